"""Turning status data into text for a person. Pure functions of plain data."""
from __future__ import annotations

import datetime


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if minutes or hours or days:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


def format_time(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _ms(seconds) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def status_document(info: dict) -> dict:
    """What ``status`` prints, from what the daemon reports: every time in milliseconds.

    Durations end in ``Ms``; points in time (``startTime``, ``connectedSince``,
    ``lastHeartbeat``) are milliseconds since the epoch, like the lock record's
    ``startTime``. ``clients`` lists the clients ``clientCount`` counts: the command
    asking (kind ``cli``) is neither. Pure; anything it does not know passes through.
    """
    doc = dict(info)
    for old, new in (("uptimeSeconds", "uptimeMs"), ("idleSecondsLeft", "idleLeftMs")):
        if old in doc:
            doc[new] = _ms(doc.pop(old))
    if isinstance(doc.get("metrics"), dict) and "drainSeconds" in doc["metrics"]:
        metrics = dict(doc["metrics"])
        metrics["drainMs"] = _ms(metrics.pop("drainSeconds"))
        doc["metrics"] = metrics
    if "clients" in doc:
        rows = []
        for row in doc["clients"] or []:
            if row.get("kind") == "cli":
                continue
            row = dict(row)
            for key in ("connectedSince", "lastHeartbeat"):
                if key in row:
                    row[key] = _ms(row[key])
            if "heartbeatInterval" in row:
                row["heartbeatMs"] = _ms(row.pop("heartbeatInterval"))
            rows.append(row)
        doc["clients"] = rows
        doc["clientCount"] = len(rows)
    return doc


def format_time_ms(epoch_ms: int | None) -> str:
    return format_time(None if epoch_ms is None else epoch_ms / 1000)


def format_status(info: dict) -> str:
    """The text of ``status`` from a :func:`status_document`."""
    mode = info.get("mode", "?")
    if mode == "standalone":
        return "\n".join([
            "memesh: standalone (daemon mode disabled)",
            f"  reason      {info.get('reason', '')}",
            f"  version     {info.get('version')} (protocol {info.get('protocol')})",
            f"  database    {info.get('dbPath')}",
            f"  storage     {info.get('storage') or '-'}",
        ])
    if mode != "daemon":
        lines = [f"memesh daemon: {mode}"]
        if info.get("reason"):
            lines.append(f"  {info['reason']}")
        if info.get("pid"):
            lines.append(f"  pid         {info['pid']}")
        lines += [f"  socket      {info.get('socketPath')}", f"  lock        {info.get('lockPath')}", f"  log         {info.get('logPath')}"]
        return "\n".join(lines)
    idle = info.get("idleLeftMs")
    if not info.get("idleTimeoutMs"):
        idle_text = "never (idle timeout disabled)"
    elif idle is None:
        idle_text = "not counting (clients connected or calls in flight)"
    else:
        idle_text = f"in {format_duration(idle / 1000)}"
    metrics = info.get("metrics", {})
    lines = [
        f"memesh daemon: {info.get('state')}",
        f"  pid         {info.get('pid')} (up {format_duration((info.get('uptimeMs') or 0) / 1000)})",
        f"  version     {info.get('version')} (protocol {info.get('protocol')}, build {info.get('build')}, Python {info.get('python')})",
        f"  socket      {info.get('socketPath')}",
        f"  lock        {info.get('lockPath')}",
        f"  log         {info.get('logPath')}",
        f"  storage     {info.get('storage') or '-'}{'' if info.get('storageAvailable', True) else ' (UNAVAILABLE: cannot reach the server; retrying)'}",
        f"  in flight   {info.get('inflight')} (completed {metrics.get('requestsCompleted', 0)}, refused {metrics.get('requestsRefused', 0)})",
        f"  idle exit   {idle_text}",
        f"  memory      {round((info.get('rssBytes') or 0) / 1048576, 1)} MiB RSS, {info.get('threads')} threads",
        f"  clients     {info.get('clientCount')}",
    ]
    if info.get("a2aPort"):
        lines.insert(len(lines) - 1, f"  a2a         http://127.0.0.1:{info['a2aPort']}/ (token: memesh a2a token)")
    rows = info.get("clients") or []
    if rows:
        lines.append(f"    {'PID':>7}  {'NAME':<20} {'KIND':<8} {'CONNECTED SINCE':<19}  LAST HEARTBEAT")
        for row in rows:
            lines.append(
                f"    {row.get('pid', 0):>7}  {str(row.get('name'))[:20]:<20} {str(row.get('kind'))[:8]:<8} "
                f"{format_time_ms(row.get('connectedSince')):<19}  {format_time_ms(row.get('lastHeartbeat'))}"
            )
    return "\n".join(lines)
