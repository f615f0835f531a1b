"""Write small, realistic sample logs with injected, labelled anomalies.

Run from the repository root::

    python3 tools/make_sample_logs.py --out sample_input_logs --seed 7

(both options shown are the defaults). The output folder receives:

* ``auth.log``                 syslog (RFC 3164) from sshd, CRON, sudo, systemd-logind
* ``access.log.1``, ``access.log``  nginx "combined" format; ``.1`` is the older, rotated file
* ``app.log``                  Java log4j/logback layout, with multi-line stack traces
* ``waf.jsonl``                one JSON object per line, modelled on AWS WAF logs
* ``labels.csv``               ``path,line,kind``: every injected anomaly (1-based line number of
                               the first line of the event, path relative to the output folder)

Only the standard library is used, all randomness comes from ``random.Random(seed)`` and every
timestamp is derived from the fixed base date 2026-03-03, so the same seed always gives
byte-identical files. Anomalies make up roughly 1-2 % of each file's lines, are spread through the
file and never appear in its first 100 lines, so a detector has some normal history to learn from.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

BASE = datetime(2026, 3, 3)
BASE_EPOCH_MS = 1_772_496_000_000  # 2026-03-03T00:00:00Z
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Relative traffic per hour of the day (quiet nights, busy working hours and evenings).
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 3, 5, 7, 9, 10, 10, 10, 10, 9, 9, 9, 10, 11, 12, 11, 8, 5, 3)
HISTORY_LINES = 150  # no anomaly before this many normal lines
HOST = "web01"


@dataclass(frozen=True)
class Entry:
    """One log event: its time (ms after BASE), its text lines and, if injected, its kind."""

    ms: int
    lines: tuple[str, ...]
    kind: str | None = None


@dataclass(frozen=True)
class Label:
    path: str
    line: int
    kind: str


# --------------------------------------------------------------------------- shared helpers


def when(ms: int) -> datetime:
    return BASE + timedelta(milliseconds=ms)


def syslog_time(ms: int) -> str:
    t = when(ms)
    return f"{MONTHS[t.month - 1]} {t.day:>2} {t:%H:%M:%S}"


def nginx_time(ms: int) -> str:
    t = when(ms)
    return f"{t.day:02d}/{MONTHS[t.month - 1]}/{t.year}:{t:%H:%M:%S} +0000"


def java_time(ms: int) -> str:
    t = when(ms)
    return f"{t:%Y-%m-%d %H:%M:%S},{ms % 1000:03d}"


def busy_times(rng: random.Random, n: int, start_ms: int, end_ms: int) -> list[int]:
    """n sorted times in [start_ms, end_ms), denser in busy hours (rejection sampling)."""
    top = max(HOUR_WEIGHTS)
    out: list[int] = []
    while len(out) < n:
        t = rng.randrange(start_ms, end_ms)
        if rng.random() * top < HOUR_WEIGHTS[(t // HOUR_MS) % 24]:
            out.append(t)
    return sorted(out)


def anomaly_times(rng: random.Random, entries: Sequence[Entry], n: int) -> list[int]:
    """n times spread evenly over the file, all after its first HISTORY_LINES lines."""
    ordered = sorted(entries, key=lambda e: e.ms)
    seen = 0
    start = ordered[0].ms
    for entry in ordered:
        seen += len(entry.lines)
        if seen >= HISTORY_LINES:
            start = entry.ms + 1
            break
    end = ordered[-1].ms - 5 * MINUTE_MS
    step = (end - start) / n
    return [start + int(step * (i + rng.uniform(0.15, 0.85))) for i in range(n)]


def inject(
    rng: random.Random,
    entries: list[Entry],
    kinds: Sequence[str],
    makers: Mapping[str, Callable[[int], list[Entry]]],
) -> None:
    """Add one anomaly of each kind in `kinds` (shuffled) at times spread through the file."""
    order = list(kinds)
    rng.shuffle(order)
    for kind, ms in zip(order, anomaly_times(rng, entries, len(order)), strict=True):
        entries.extend(makers[kind](ms))


def render(entries: Sequence[Entry], path: str) -> tuple[str, list[Label]]:
    """Sort entries by time (stable) and return the file text and its labels."""
    lines: list[str] = []
    labels: list[Label] = []
    for entry in sorted(entries, key=lambda e: e.ms):
        if entry.kind is not None:
            labels.append(Label(path, len(lines) + 1, entry.kind))
        lines.extend(entry.lines)
    return "".join(line + "\n" for line in lines), labels


def pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def pid_at(rng: random.Random, ms: int) -> int:
    """Process ids grow through the day, as they do on a real host."""
    return 21_000 + ms // 3_000 + rng.randrange(40)


# --------------------------------------------------------------------------- auth.log

ADMINS = (("alice", 1002), ("bob", 1003), ("carol", 1004))
SUDO_COMMANDS = (
    ("/usr/bin/systemctl status nginx", 6),
    ("/usr/bin/journalctl -u shop -n 200", 5),
    ("/usr/bin/systemctl restart shop", 2),
    ("/usr/bin/tail -n 100 /var/log/nginx/error.log", 4),
    ("/usr/bin/apt-get update", 1),
    ("/usr/bin/docker ps", 3),
    ("/usr/bin/less /var/log/shop/app.log", 3),
    ("/usr/sbin/nginx -t", 2),
)
KEY_FPS = {
    "deploy": "ED25519 SHA256:q8Yt0mZ3kVw1d6PbN2xRj5LcHfUe9sAoGi4TnKy7WrE",
    "alice": "ED25519 SHA256:Xk2PvB7nQ9mLr4TsYw1Hc6DjZe8GuFa3Np5KoVi0ItM",
    "bob": "RSA SHA256:hT3uN8pQw2Lx6Ez9Rb1Yk5Vc7Mf0Ja4Sg3Dn8Ko2WiP",
    "carol": "ECDSA SHA256:Za9Lm3Qp6Tx1Wc8Vn4Rb7Yk2Hf5Ge0Ds9Ju3Ni6OoE",
    "backup": "ED25519 SHA256:Bq4Wn7Tz1Kc8Vx3Lm6Pr9Ys2Hd5Fg0Ja3Ue7Ni1OoR",
}
UIDS = {"deploy": 1001, "alice": 1002, "bob": 1003, "carol": 1004, "backup": 1005}


def auth_line(ms: int, proc: str, msg: str) -> Entry:
    return Entry(ms, (f"{syslog_time(ms)} {HOST} {proc}: {msg}",))


def ssh_session(
    rng: random.Random, ms: int, user: str, ip: str, session: int, length_ms: int
) -> list[Entry]:
    pid = pid_at(rng, ms)
    port = rng.randrange(32_768, 61_000)
    uid = UIDS[user]
    end = ms + length_ms
    out = [
        auth_line(
            ms,
            f"sshd[{pid}]",
            f"Accepted publickey for {user} from {ip} port {port} ssh2: {KEY_FPS[user]}",
        ),
        auth_line(
            ms,
            f"sshd[{pid}]",
            f"pam_unix(sshd:session): session opened for user {user}(uid={uid}) by (uid=0)",
        ),
        auth_line(ms + 40, "systemd-logind[812]", f"New session {session} of user {user}."),
        auth_line(
            end,
            f"sshd[{pid + 2}]",
            f"Received disconnect from {ip} port {port}:11: disconnected by user",
        ),
        auth_line(end, f"sshd[{pid + 2}]", f"Disconnected from user {user} {ip} port {port}"),
        auth_line(
            end + 5, f"sshd[{pid}]", f"pam_unix(sshd:session): session closed for user {user}"
        ),
        auth_line(
            end + 30,
            "systemd-logind[812]",
            f"Session {session} logged out. Waiting for processes to exit.",
        ),
        auth_line(end + 60, "systemd-logind[812]", f"Removed session {session}."),
    ]
    if user in dict(ADMINS):
        tty = f"pts/{rng.randrange(4)}"
        for _ in range(rng.choice((0, 1, 1, 2, 3, 4))):
            t = rng.randrange(ms + 20_000, max(ms + 20_001, end - 5_000))
            cmd = pick(rng, SUDO_COMMANDS)
            out += [
                auth_line(
                    t,
                    "sudo",
                    f"{user:>8} : TTY={tty} ; PWD=/home/{user} ; USER=root ; COMMAND={cmd}",
                ),
                auth_line(
                    t,
                    "sudo",
                    "pam_unix(sudo:session): session opened for user "
                    f"root(uid=0) by {user}(uid={uid})",
                ),
                auth_line(
                    t + rng.randrange(50, 4_000),
                    "sudo",
                    "pam_unix(sudo:session): session closed for user root",
                ),
            ]
    return out


def make_auth_log(rng: random.Random) -> list[Entry]:
    """sshd logins (CI deploys, admins, nightly backup), CRON, sudo, logind, preauth closes."""
    entries: list[Entry] = []
    cron_jobs = (("root", 0, 5), ("root", 17, 60), ("www-data", 3, 15), ("root", 7, 1440))
    for user, offset, every in cron_jobs:
        uid = 0 if user == "root" else 33
        for minute in range(offset, 24 * 60, every):
            ms = minute * MINUTE_MS + rng.randrange(0, 900)
            pid = pid_at(rng, ms)
            entries.append(
                auth_line(
                    ms,
                    f"CRON[{pid}]",
                    f"pam_unix(cron:session): session opened for user {user}(uid={uid}) by (uid=0)",
                )
            )
            entries.append(
                auth_line(
                    ms + rng.randrange(20, 2_500),
                    f"CRON[{pid}]",
                    f"pam_unix(cron:session): session closed for user {user}",
                )
            )

    logins: list[tuple[int, str, str, int]] = []
    for ms in busy_times(rng, 50, 6 * HOUR_MS, 23 * HOUR_MS):  # CI deploys
        ip, length = f"10.0.2.{rng.randrange(10, 21)}", rng.randrange(8, 95) * 1000
        logins.append((ms, "deploy", ip, length))
    for ms in busy_times(rng, 22, 7 * HOUR_MS, 22 * HOUR_MS):  # admins over the VPN
        ip, length = f"10.8.0.{rng.randrange(2, 60)}", rng.randrange(3, 50) * MINUTE_MS
        logins.append((ms, rng.choice(ADMINS)[0], ip, length))
    logins.append(
        (
            2 * HOUR_MS + 5 * MINUTE_MS + rng.randrange(60_000),
            "backup",
            "10.0.3.20",
            rng.randrange(6, 14) * MINUTE_MS,
        )
    )
    session = 4_117
    for ms, user, ip, length in sorted(logins):
        session += rng.randrange(1, 4)
        entries += ssh_session(rng, ms, user, ip, session, length)

    for ms in busy_times(rng, 24, 0, DAY_MS - HOUR_MS):  # port checks from monitoring
        ip = rng.choice(("10.0.0.2", "10.0.0.3", "10.0.0.3", "10.0.4.9"))
        entries.append(
            auth_line(
                ms,
                f"sshd[{pid_at(rng, ms)}]",
                f"Connection closed by {ip} port {rng.randrange(32_768, 61_000)} [preauth]",
            )
        )

    def burst(ms: int) -> list[Entry]:
        out: list[Entry] = []
        pid, port = pid_at(rng, ms), rng.randrange(32_768, 61_000)
        for i in range(rng.randrange(5, 9)):
            if i % 3 == 0:
                pid, port = pid + rng.randrange(1, 4), port + rng.randrange(1, 30)
            user = rng.choice(("admin", "admin", "admin", "test", "oracle", "ubuntu"))
            line = auth_line(
                ms,
                f"sshd[{pid}]",
                f"Failed password for invalid user {user} from 203.0.113.7 port {port} ssh2",
            )
            out.append(Entry(ms, line.lines, "failed_password_burst"))
            ms += rng.randrange(600, 3_500)
        return out

    def root_login(ms: int) -> list[Entry]:
        line = auth_line(
            ms,
            f"sshd[{pid_at(rng, ms)}]",
            "Accepted password for root from "
            f"198.51.100.23 port {rng.randrange(32_768, 61_000)} ssh2",
        )
        return [Entry(ms, line.lines, "root_login")]

    def new_user(ms: int) -> list[Entry]:
        line = auth_line(
            ms,
            f"useradd[{pid_at(rng, ms)}]",
            "new user: name=backdoor, UID=0, "
            "GID=0, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/1",
        )
        return [Entry(ms, line.lines, "new_user")]

    def segfault(ms: int) -> list[Entry]:
        uptime = 431_250.0 + ms / 1000 + rng.random() / 1000
        base = 0x7F3A_1C40_0000 + rng.randrange(0x1000) * 0x1000
        line = auth_line(
            ms,
            "kernel",
            f"[{uptime:.6f}] sshd[{pid_at(rng, ms)}]: segfault at 0 "
            f"ip {base + 0x9_4B2D:016x} sp 00007ffd{rng.randrange(16**8):08x} "
            f"error 4 in libc.so.6[{base:x}+195000] likely on CPU 1 "
            "(core 1, socket 0)",
        )
        return [Entry(ms, line.lines, "segfault")]

    makers = {
        "failed_password_burst": burst,
        "root_login": root_login,
        "new_user": new_user,
        "segfault": segfault,
    }
    kinds = ["failed_password_burst"] * 3 + ["root_login", "new_user", "segfault"]
    inject(rng, entries, kinds, makers)
    return entries


# --------------------------------------------------------------------------- access.log(.1)

BROWSERS = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 Safari/537.36",
        30,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
        20,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.6261.64 Mobile Safari/537.36",
        14,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.3 Safari/605.1.15",
        12,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0", 8),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.66",
        7,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 Safari/537.36",
        6,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0", 3),
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CLIENT_SUBNETS = (
    ("81.2.69", 9),
    ("86.150.12", 7),
    ("92.40.188", 5),
    ("145.53.20", 4),
    ("84.160.33", 3),
    ("90.12.77", 2),
)
SITE = "https://shop.example.com"
CATEGORIES = ("shoes", "jackets", "bags", "hats", "socks", "outdoor")
SEARCHES = ("red+shoes", "rain+jacket", "wool+socks", "backpack", "sale", "running")
STATIC = (
    "/static/css/app.3f9c2e1a.css",
    "/static/js/app.8b1d4a7c.js",
    "/static/js/vendor.51e0b3f9.js",
    "/static/img/logo.svg",
    "/favicon.ico",
)


def nginx_line(
    ms: int,
    ip: str,
    method: str,
    path: str,
    status: int,
    size: int,
    referer: str,
    agent: str,
    kind: str | None = None,
) -> Entry:
    line = (
        f'{ip} - - [{nginx_time(ms)}] "{method} {path} HTTP/1.1" {status} {size} '
        f'"{referer}" "{agent}"'
    )
    return Entry(ms, (line,), kind)


def page(rng: random.Random) -> tuple[str, str, int, int]:
    """(method, path, status, body size) of one ordinary page or API request."""
    pid = rng.randrange(1_000, 9_999)
    choices: list[tuple[str, str, int, int]] = [
        ("GET", "/", 200, rng.randrange(5_200, 5_900)),
        (
            "GET",
            f"/products?category={rng.choice(CATEGORIES)}&page={rng.randrange(1, 6)}",
            200,
            rng.randrange(14_000, 22_000),
        ),
        ("GET", f"/products/{pid}", 200, rng.randrange(8_000, 13_500)),
        ("GET", f"/products?id={pid}", 200, rng.randrange(8_000, 13_500)),
        ("GET", f"/api/v1/products/{pid}/stock", 200, rng.randrange(60, 140)),
        ("GET", f"/search?q={rng.choice(SEARCHES)}", 200, rng.randrange(9_000, 20_000)),
        ("POST", "/api/v1/cart/items", 200, rng.randrange(300, 1_900)),
        ("GET", "/cart", 200, rng.randrange(4_000, 7_000)),
        ("POST", "/api/v1/checkout", 200, rng.randrange(200, 600)),
        (
            "GET",
            f"/orders/{rng.randrange(40_000, 60_000)}/confirmation",
            200,
            rng.randrange(3_000, 4_500),
        ),
        ("GET", "/account", 200, rng.randrange(3_500, 4_200)),
        ("POST", "/api/v1/session", 200, rng.randrange(90, 160)),
        ("GET", "/shop", 301, 169),
        ("GET", f"/product/{pid}", 301, 169),
    ]
    weights = (14, 16, 24, 3, 9, 7, 8, 6, 3, 3, 3, 3, 2, 2)
    return rng.choices(choices, weights)[0]


def make_access_log(
    rng: random.Random, start_ms: int, end_ms: int, kinds: Sequence[str]
) -> list[Entry]:
    """Visitor sessions, load-balancer health checks and a crawler; then `kinds` injected."""
    entries: list[Entry] = []
    for ms in range(start_ms + 7_000, end_ms, 5 * MINUTE_MS):
        lb = "10.20.0.2" if (ms // MINUTE_MS) % 2 else "10.20.1.2"
        entries.append(nginx_line(ms, lb, "GET", "/healthz", 200, 2, "-", "ELB-HealthChecker/2.0"))
    for ms in busy_times(rng, 9, start_ms, end_ms):
        entries.append(
            nginx_line(
                ms,
                f"66.249.66.{rng.randrange(1, 200)}",
                "GET",
                f"/products/{rng.randrange(1_000, 9_999)}",
                200,
                rng.randrange(8_000, 13_500),
                "-",
                GOOGLEBOT,
            )
        )
    lines = len(entries)
    while lines < 1_000:
        ms = busy_times(rng, 1, start_ms, end_ms - 10 * MINUTE_MS)[0]
        ip = f"{pick(rng, CLIENT_SUBNETS)}.{rng.randrange(2, 255)}"
        agent = pick(rng, BROWSERS)
        referer = rng.choice(("-", "-", "https://www.google.com/", "https://www.bing.com/"))
        for _ in range(rng.choice((1, 2, 2, 3, 3, 4, 5, 6, 8))):
            method, path, status, size = page(rng)
            entries.append(nginx_line(ms, ip, method, path, status, size, referer, agent))
            if method == "GET" and status == 200 and not path.startswith("/api/"):
                for asset in rng.sample(STATIC, rng.choice((0, 0, 1, 2))):
                    cached = rng.random() < 0.6
                    entries.append(
                        nginx_line(
                            ms + rng.randrange(30, 400),
                            ip,
                            "GET",
                            asset,
                            304 if cached else 200,
                            0 if cached else rng.randrange(1_200, 90_000),
                            SITE + path,
                            agent,
                        )
                    )
            if method == "GET" and not path.startswith("/api/"):
                referer = SITE + path
            ms += rng.randrange(2_000, 45_000)
        lines = len(entries)

    def ordinary() -> tuple[str, str]:
        return f"{pick(rng, CLIENT_SUBNETS)}.{rng.randrange(2, 255)}", pick(rng, BROWSERS)

    def http_5xx(ms: int) -> list[Entry]:
        ip, agent = ordinary()
        method, path, _, _ = page(rng)
        status = rng.choice((500, 502, 503))
        size = {500: 177, 502: 157, 503: 190}[status]
        return [nginx_line(ms, ip, method, path, status, size, SITE + "/", agent, "http_5xx")]

    def sql_injection(ms: int) -> list[Entry]:
        ip, agent = ordinary()
        payload = rng.choice(
            (
                "1%27%20UNION%20SELECT%20username,password%20FROM%20users--%20-",
                "1%27%20UNION%20SELECT%20NULL,NULL,version()--%20-",
                "7%27%20OR%20%271%27=%271%27%20UNION%20SELECT%20*%20FROM%20customers--",
            )
        )
        return [
            nginx_line(
                ms,
                ip,
                "GET",
                f"/products?id={payload}",
                200,
                rng.randrange(8_000, 13_500),
                "-",
                agent,
                "sql_injection",
            )
        ]

    def path_traversal(ms: int) -> list[Entry]:
        ip, agent = ordinary()
        path = rng.choice(
            (
                "/../../etc/passwd",
                "/static/../../../etc/passwd",
                "/download?file=../../../../etc/passwd",
            )
        )
        return [nginx_line(ms, ip, "GET", path, 400, 157, "-", agent, "path_traversal")]

    def scanner(ms: int) -> list[Entry]:
        ip, _ = ordinary()
        agent = rng.choice(
            (
                "sqlmap/1.7.2#stable (https://sqlmap.org)",
                "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000412)",
            )
        )
        method, path, status, size = page(rng)
        return [nginx_line(ms, ip, method, path, status, size, "-", agent, "scanner")]

    makers = {
        "http_5xx": http_5xx,
        "sql_injection": sql_injection,
        "path_traversal": path_traversal,
        "scanner": scanner,
    }
    inject(rng, entries, kinds, makers)
    return entries


# --------------------------------------------------------------------------- app.log

PKG = "com.example.shop"
TRACE_TAIL = (
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
    "org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run(TaskThread.java:61)",
    "java.base/java.lang.Thread.run(Thread.java:1583)",
)


def app_line(ms: int, level: str, thread: str, logger: str, msg: str) -> str:
    return f"{java_time(ms)} {level:<5} [{thread}] {logger} - {msg}"


def http_thread(rng: random.Random) -> str:
    return f"http-nio-8080-exec-{min(rng.randrange(1, 12), rng.randrange(1, 26))}"


def exception_lines(rng: random.Random, scenario: int) -> tuple[str, list[str]]:
    """(ERROR message, stack trace lines) for one of four realistic failures (scenario 0-3)."""
    order = rng.randrange(40_000, 60_000)
    more = rng.randrange(9, 40)
    if scenario == 0:
        msg = f"Failed to place order {order}"
        trace = [
            f"java.lang.IllegalStateException: Could not quote shipping for order {order}",
            f"\tat {PKG}.service.OrderService.placeOrder(OrderService.java:142)",
            f"\tat {PKG}.web.OrderController.create(OrderController.java:57)",
            *(f"\tat {frame}" for frame in TRACE_TAIL),
            'Caused by: java.lang.NullPointerException: Cannot invoke "'
            f'{PKG}.model.Address.getCountry()" because "address" is null',
            f"\tat {PKG}.service.ShippingService.quote(ShippingService.java:88)",
            f"\tat {PKG}.service.OrderService.placeOrder(OrderService.java:139)",
            f"\t... {more} more",
        ]
    elif scenario == 1:
        msg = f"Could not save order {order}"
        trace = [
            "org.springframework.dao.DataIntegrityViolationException: could not execute "
            "statement; SQL [n/a]; constraint [uk_order_ref]",
            "\tat org.springframework.orm.jpa.vendor.HibernateJpaDialect"
            ".convertHibernateAccessException(HibernateJpaDialect.java:290)",
            f"\tat {PKG}.repo.OrderRepository.save(OrderRepository.java:41)",
            f"\tat {PKG}.service.OrderService.placeOrder(OrderService.java:151)",
            *(f"\tat {frame}" for frame in TRACE_TAIL[:2]),
            "Caused by: org.postgresql.util.PSQLException: ERROR: duplicate key value violates "
            'unique constraint "uk_order_ref"',
            f"  Detail: Key (ref)=(ORD-{order}) already exists.",
            "\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse"
            "(QueryExecutorImpl.java:2725)",
            f"\t... {more} more",
        ]
    elif scenario == 2:
        msg = f"Payment capture failed for order {order}"
        trace = [
            f"{PKG}.payment.PaymentException: Provider call failed for order {order}",
            f"\tat {PKG}.payment.StripeClient.capture(StripeClient.java:119)",
            f"\tat {PKG}.service.PaymentService.capture(PaymentService.java:73)",
            f"\tat {PKG}.service.OrderService.placeOrder(OrderService.java:160)",
            *(f"\tat {frame}" for frame in TRACE_TAIL),
            "Caused by: java.net.SocketTimeoutException: Read timed out",
            "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
            "\tat java.base/java.net.Socket$SocketInputStream.read(Socket.java:1099)",
            f"\t... {more} more",
        ]
    else:
        bad = f"{rng.randrange(10, 99)}abc"
        msg = "Request processing failed for GET /api/v1/products/search"
        trace = [
            "org.springframework.web.method.annotation.MethodArgumentTypeMismatchException: "
            "Failed to convert value of type 'java.lang.String' to required type 'int'; "
            f'For input string: "{bad}"',
            "\tat org.springframework.web.method.annotation."
            "AbstractNamedValueMethodArgumentResolver.resolveArgument"
            "(AbstractNamedValueMethodArgumentResolver.java:134)",
            f"\tat {PKG}.web.ProductController.search(ProductController.java:94)",
            *(f"\tat {frame}" for frame in TRACE_TAIL[:3]),
            f'Caused by: java.lang.NumberFormatException: For input string: "{bad}"',
            "\tat java.base/java.lang.NumberFormatException.forInputString"
            "(NumberFormatException.java:67)",
            "\tat java.base/java.lang.Integer.parseInt(Integer.java:662)",
            f"\t... {more} more",
        ]
    return msg, trace


def make_app_log(rng: random.Random) -> list[Entry]:
    """A Spring Boot shop: requests, orders, caches, pool stats, a few slow-query WARNs."""
    entries: list[Entry] = []
    boot = [
        ("main", f"{PKG}.ShopApplication", "Starting ShopApplication v2.14.3 using Java 21.0.2"),
        ("main", f"{PKG}.ShopApplication", 'The following 1 profile is active: "prod"'),
        (
            "main",
            "org.springframework.boot.web.embedded.tomcat.TomcatWebServer",
            "Tomcat initialized with port 8080 (http)",
        ),
        ("main", "com.zaxxer.hikari.HikariDataSource", "HikariPool-1 - Starting..."),
        (
            "main",
            "com.zaxxer.hikari.pool.HikariPool",
            "HikariPool-1 - Added connection org.postgresql.jdbc.PgConnection@5f1c2a7e",
        ),
        ("main", "com.zaxxer.hikari.HikariDataSource", "HikariPool-1 - Start completed."),
        (
            "main",
            "org.springframework.boot.web.embedded.tomcat.TomcatWebServer",
            "Tomcat started on port 8080 (http) with context path ''",
        ),
        (
            "main",
            f"{PKG}.ShopApplication",
            "Started ShopApplication in 7.412 seconds (process running for 8.093)",
        ),
    ]
    for i, (thread, logger, msg) in enumerate(boot):
        ms = 1_000 + i * 900 + rng.randrange(300)
        entries.append(Entry(ms, (app_line(ms, "INFO", thread, logger, msg),)))
    for ms in range(20_000, DAY_MS, 10 * MINUTE_MS):  # pool housekeeping
        active = rng.choice((0, 1, 1, 2, 2, 3, 4))
        msg = (
            f"HikariPool-1 - Pool stats (total=10, active={active}, idle={10 - active}, waiting=0)"
        )
        entries.append(
            Entry(
                ms,
                (
                    app_line(
                        ms,
                        "DEBUG",
                        "HikariPool-1 housekeeper",
                        "com.zaxxer.hikari.pool.HikariPool",
                        msg,
                    ),
                ),
            )
        )
    for ms in range(45_000, DAY_MS, 15 * MINUTE_MS):  # scheduled cache refresh
        ms += rng.randrange(400)
        msg = (
            f"Refreshed product cache: {rng.randrange(400, 430)} entries in "
            f"{rng.randrange(40, 260)} ms"
        )
        entries.append(
            Entry(ms, (app_line(ms, "INFO", "scheduling-1", f"{PKG}.jobs.CacheRefreshJob", msg),))
        )

    def request(ms: int) -> list[Entry]:
        thread = http_thread(rng)
        product, customer = rng.randrange(1_000, 9_999), rng.randrange(100, 5_000)
        kind = rng.choices(range(9), (52, 32, 12, 28, 18, 16, 10, 1, 1))[0]
        if kind == 0:
            lines = [
                (
                    "DEBUG",
                    f"{PKG}.web.ProductController",
                    f"GET /api/v1/products/{product} -> 200 in {rng.randrange(3, 180)} ms",
                )
            ]
        elif kind == 1:
            lines = [("DEBUG", f"{PKG}.service.ProductService", f"Cache hit for product {product}")]
        elif kind == 2:
            lines = [
                (
                    "DEBUG",
                    f"{PKG}.service.ProductService",
                    f"Cache miss for product {product}, loading from database",
                )
            ]
        elif kind == 3:
            size, qty = rng.choice("SMLX"), rng.choice((1, 1, 1, 2, 3))
            lines = [
                (
                    "INFO",
                    f"{PKG}.service.CartService",
                    f"Added sku=SKU-{product}-{size} qty={qty} to cart {rng.randrange(16**8):08x}",
                )
            ]
        elif kind == 4:
            order, total = rng.randrange(40_000, 60_000), rng.randrange(500, 40_000) / 100
            lines = [
                (
                    "INFO",
                    f"{PKG}.service.PaymentService",
                    f"Payment pi_{rng.randrange(16**12):012x} authorized for order {order} "
                    f"amount={total:.2f} EUR",
                ),
                (
                    "INFO",
                    f"{PKG}.service.OrderService",
                    f"Order {order} placed for customer {customer} total={total:.2f}",
                ),
                (
                    "INFO",
                    f"{PKG}.service.InventoryService",
                    f"Stock reserved sku=SKU-{product} qty=1 remaining={rng.randrange(0, 300)}",
                ),
            ]
        elif kind == 5:
            lines = [
                (
                    "INFO",
                    f"{PKG}.service.UserService",
                    f"User {customer} logged in from {pick(rng, CLIENT_SUBNETS)}."
                    f"{rng.randrange(2, 255)}",
                )
            ]
        elif kind == 6:
            lines = [
                (
                    "DEBUG",
                    f"{PKG}.service.UserService",
                    f"Session expired for user {customer} after {rng.randrange(15, 90)} min",
                )
            ]
        elif kind == 7:
            lines = [
                (
                    "WARN",
                    f"{PKG}.repo.OrderRepository",
                    f"Slow query took {rng.randrange(1_000, 2_600)} ms: select o from Order o "
                    "where o.customerId = :customerId",
                )
            ]
        else:
            lines = [
                (
                    "WARN",
                    f"{PKG}.service.PaymentService",
                    f"Payment provider responded slowly ({rng.randrange(2_000, 4_500)} ms), "
                    "retrying (attempt 2/3)",
                )
            ]
        out: list[Entry] = []
        for level, logger, msg in lines:
            out.append(Entry(ms, (app_line(ms, level, thread, logger, msg),)))
            ms += rng.randrange(2, 60)
        return out

    for ms in busy_times(rng, 1_000, 30_000, DAY_MS - 30_000):
        entries += request(ms)

    scenarios = [0, 1, 2, 3, 0, 2]
    rng.shuffle(scenarios)

    def exception(ms: int) -> list[Entry]:
        thread = http_thread(rng)
        msg, trace = exception_lines(rng, scenarios.pop())
        logger = f"{PKG}.web.GlobalExceptionHandler"
        return [Entry(ms, (app_line(ms, "ERROR", thread, logger, msg), *trace), "exception")]

    def oom(ms: int) -> list[Entry]:
        level, thread, logger = rng.choice(
            (
                ("ERROR", http_thread(rng), f"{PKG}.web.ReportController"),
                ("FATAL", "scheduling-1", f"{PKG}.jobs.NightlyExportJob"),
            )
        )
        head = app_line(
            ms,
            level,
            thread,
            logger,
            "Unhandled error: java.lang.OutOfMemoryError: Java heap space",
        )
        trace = (
            "java.lang.OutOfMemoryError: Java heap space",
            "\tat java.base/java.util.Arrays.copyOf(Arrays.java:3541)",
            "\tat java.base/java.lang.AbstractStringBuilder.ensureCapacityInternal"
            "(AbstractStringBuilder.java:242)",
            f"\tat {PKG}.report.CsvExporter.writeRow(CsvExporter.java:64)",
        )
        return [Entry(ms, (head, *trace), "oom")]

    def db_down(ms: int) -> list[Entry]:
        out: list[Entry] = []
        for _ in range(rng.randrange(3, 5)):
            line = app_line(
                ms,
                "ERROR",
                http_thread(rng),
                "org.hibernate.engine.jdbc.spi.SqlExceptionHelper",
                "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
            )
            out.append(Entry(ms, (line,), "db_down"))
            ms += rng.randrange(200, 9_000)
        return out

    makers = {"exception": exception, "oom": oom, "db_down": db_down}
    inject(rng, entries, ["exception"] * 6 + ["oom"] * 2 + ["db_down"] * 2, makers)
    return entries


# --------------------------------------------------------------------------- waf.jsonl

COUNTRIES = (("US", 40), ("GB", 22), ("DE", 18), ("FR", 11), ("NL", 9))
COUNTRY_PREFIXES = {
    "US": ("34.201", "52.14", "73.162", "98.207"),
    "GB": ("81.2", "86.150", "92.40"),
    "DE": ("84.160", "91.64", "178.24"),
    "FR": ("90.12", "78.192"),
    "NL": ("145.53", "82.161"),
}
WAF_URIS = (
    ("GET", "/", 14),
    ("GET", "/products", 18),
    ("GET", "/products/{id}", 24),
    ("GET", "/api/v1/products/{id}/stock", 10),
    ("GET", "/search", 7),
    ("GET", "/cart", 6),
    ("POST", "/api/v1/cart/items", 9),
    ("POST", "/api/v1/checkout", 3),
    ("POST", "/api/v1/session", 3),
    ("GET", "/account", 3),
    ("GET", "/shop", 2),
    ("GET", "/static/js/app.8b1d4a7c.js", 6),
)


def waf_record(rng: random.Random, ms: int) -> dict[str, Any]:
    country = pick(rng, COUNTRIES)
    method, uri, _ = rng.choices(WAF_URIS, [w for _, _, w in WAF_URIS])[0]
    uri = uri.replace("{id}", str(rng.randrange(1_000, 9_999)))
    status = 200
    if uri == "/shop":
        status = 301
    elif uri.startswith("/static/") and rng.random() < 0.6:
        status = 304
    prefix = rng.choice(COUNTRY_PREFIXES[country])
    return {
        "timestamp": BASE_EPOCH_MS + ms,
        "action": "ALLOW",
        "httpSourceName": "CF" if rng.random() < 0.62 else "ALB",
        "httpStatus": status,
        "terminatingRuleId": "AllowListedPartners" if rng.random() < 0.07 else "Default_Action",
        "httpRequest": {
            "clientIp": f"{prefix}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "country": country,
            "httpMethod": method,
            "uri": uri,
        },
    }


def make_waf_log(rng: random.Random) -> list[Entry]:
    """AWS-WAF-like records: ALLOW traffic from CF/ALB, five countries, GET/POST."""
    entries = [
        Entry(ms, (json.dumps(waf_record(rng, ms)),)) for ms in busy_times(rng, 1_500, 0, DAY_MS)
    ]

    # Each anomaly changes exactly one field of an otherwise ordinary record.
    changes: dict[str, Callable[[], tuple[str, str, object]]] = {
        "waf_block": lambda: ("", "action", "BLOCK"),
        "waf_unknown_source": lambda: ("", "httpSourceName", rng.choice(("APPSYNC", "APIGW"))),
        "waf_4xx": lambda: ("", "httpStatus", rng.choice((403, 404, 429))),
        "waf_5xx": lambda: ("", "httpStatus", rng.choice((500, 503))),
        "waf_unknown_country": lambda: ("httpRequest", "country", rng.choice(("KP", "IR", "BY"))),
        "waf_delete": lambda: ("httpRequest", "httpMethod", "DELETE"),
    }

    def maker(kind: str) -> Callable[[int], list[Entry]]:
        def make(ms: int) -> list[Entry]:
            record = waf_record(rng, ms)
            parent, field, value = changes[kind]()
            (record[parent] if parent else record)[field] = value
            return [Entry(ms, (json.dumps(record),), kind)]

        return make

    counts = {
        "waf_block": 4,
        "waf_unknown_source": 2,
        "waf_4xx": 3,
        "waf_5xx": 3,
        "waf_unknown_country": 3,
        "waf_delete": 3,
    }
    makers = {kind: maker(kind) for kind in counts}
    inject(rng, entries, [k for k, n in counts.items() for _ in range(n)], makers)
    return entries


# --------------------------------------------------------------------------- main


def generate(out: Path, seed: int) -> dict[str, int]:
    """Write all sample files into `out`; return the line count of each log file."""
    rng = random.Random(seed)
    access_kinds = ["http_5xx", "sql_injection", "path_traversal", "scanner"] * 2
    files = {
        "auth.log": make_auth_log(rng),
        "access.log.1": make_access_log(rng, 0, 12 * HOUR_MS, access_kinds),
        "access.log": make_access_log(rng, 12 * HOUR_MS, DAY_MS, access_kinds),
        "app.log": make_app_log(rng),
        "waf.jsonl": make_waf_log(rng),
    }
    out.mkdir(parents=True, exist_ok=True)
    labels: list[Label] = []
    counts: dict[str, int] = {}
    for name, entries in files.items():
        text, file_labels = render(entries, name)
        (out / name).write_bytes(text.encode("utf-8"))
        labels += file_labels
        counts[name] = text.count("\n")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "line", "kind"])
    for label in sorted(labels, key=lambda lb: (lb.path, lb.line)):
        writer.writerow([label.path, label.line, label.kind])
    (out / "labels.csv").write_bytes(buf.getvalue().encode("utf-8"))
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("sample_input_logs"),
        help="output folder (default: sample_input_logs)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    args = parser.parse_args(argv)
    for name, lines in generate(args.out, args.seed).items():
        print(f"{args.out / name}: {lines} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
