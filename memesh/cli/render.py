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


def format_status(info: dict) -> str:
    mode = info.get("mode", "?")
    if mode == "standalone":
        return "\n".join([
            "memesh: standalone (daemon mode disabled)",
            f"  reason      {info.get('reason', '')}",
            f"  version     {info.get('version')} (protocol {info.get('protocol')})",
            f"  database    {info.get('dbPath')}",
        ])
    if mode != "daemon":
        lines = [f"memesh daemon: {mode}"]
        if info.get("reason"):
            lines.append(f"  {info['reason']}")
        if info.get("pid"):
            lines.append(f"  pid         {info['pid']}")
        lines += [f"  socket      {info.get('socketPath')}", f"  lock        {info.get('lockPath')}", f"  log         {info.get('logPath')}"]
        return "\n".join(lines)
    idle = info.get("idleSecondsLeft")
    if not info.get("idleTimeoutMs"):
        idle_text = "never (idle timeout disabled)"
    elif idle is None:
        idle_text = "not counting (clients connected or calls in flight)"
    else:
        idle_text = f"in {format_duration(idle)}"
    metrics = info.get("metrics", {})
    lines = [
        f"memesh daemon: {info.get('state')}",
        f"  pid         {info.get('pid')} (up {format_duration(info.get('uptimeSeconds'))})",
        f"  version     {info.get('version')} (protocol {info.get('protocol')}, build {info.get('build')}, Python {info.get('python')})",
        f"  socket      {info.get('socketPath')}",
        f"  lock        {info.get('lockPath')}",
        f"  log         {info.get('logPath')}",
        f"  in flight   {info.get('inflight')} (completed {metrics.get('requestsCompleted', 0)}, refused {metrics.get('requestsRefused', 0)})",
        f"  idle exit   {idle_text}",
        f"  memory      {round((info.get('rssBytes') or 0) / 1048576, 1)} MiB RSS, {info.get('threads')} threads",
        f"  clients     {info.get('clientCount')}",
    ]
    rows = [row for row in info.get("clients") or [] if row.get("kind") != "cli"]  # not this very command
    if rows:
        lines.append(f"    {'PID':>7}  {'NAME':<20} {'KIND':<8} {'CONNECTED SINCE':<19}  LAST HEARTBEAT")
        for row in rows:
            lines.append(
                f"    {row.get('pid', 0):>7}  {str(row.get('name'))[:20]:<20} {str(row.get('kind'))[:8]:<8} "
                f"{format_time(row.get('connectedSince')):<19}  {format_time(row.get('lastHeartbeat'))}"
            )
    return "\n".join(lines)
