"""Real mail servers for the tests, on loopback: a private Dovecot (IMAP, from Debian's
`dovecot-imapd`) and an SMTP server that keeps what it receives (aiosmtpd).

Dovecot runs in the foreground with its own configuration, state and Maildir in a
temporary folder, one passwd-file user, no TLS (loopback only), and nothing but
IMAP; the system's Dovecot configuration is never read.
"""
from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from aiosmtpd.controller import Controller

from deskstream.localkafka import die_with_parent, free_port

DOVECOT = "/usr/sbin/dovecot"


class Dovecot:
    """A private Dovecot IMAP server on 127.0.0.1 and a free port, run in the foreground as
    a child process (it dies with the test run). Everything it writes is under `folder`;
    its port and password stay the same across restart(), as a real mailbox's do."""

    def __init__(self, folder: Path, user: str = "support") -> None:
        self.folder = folder
        self.user = user
        self.password = secrets.token_hex(12)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / "dovecot.log"

    def _write_config(self) -> Path:
        # As root (CI), Dovecot's own unprivileged users run the login and mail
        # processes (it refuses root for both); otherwise the current user runs all.
        if os.getuid() == 0:
            login_user, internal_user = "dovenull", "dovecot"
            mail_owner = pwd.getpwnam("dovecot")
        else:
            login_user = internal_user = pwd.getpwuid(os.getuid()).pw_name
            mail_owner = pwd.getpwuid(os.getuid())
        for sub in ("run", "state", "mail"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        os.chown(self.folder / "mail", mail_owner.pw_uid, mail_owner.pw_gid)
        self.folder.chmod(0o755)
        (self.folder / "passwd").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{mail_owner.pw_uid}:{mail_owner.pw_gid}::{self.folder / 'mail'}::\n"
        )
        config = self.folder / "dovecot.conf"
        config.write_text(f"""
base_dir = {self.folder / 'run'}
state_dir = {self.folder / 'state'}
log_path = {self.log_path}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name}
default_login_user = {login_user}
first_valid_uid = {mail_owner.pw_uid}
first_valid_gid = {mail_owner.pw_gid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = {self.folder / 'passwd'}
}}
userdb {{
  driver = passwd-file
  args = {self.folder / 'passwd'}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""")
        return config

    def start(self) -> "Dovecot":
        config = self._write_config()
        with open(self.folder / "stdout.log", "ab") as out:
            self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as connection:
                    if connection.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"Dovecot did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        texts = [p.read_text(errors="replace") for p in (self.log_path, self.folder / "stdout.log") if p.exists()]
        return "\n".join("\n".join(text.splitlines()[-lines:]) for text in texts)

    def __enter__(self) -> "Dovecot":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- what the tests do to the mailbox (the standard library's imaplib) -------------

    def _session(self, folder: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port)
        imap.login(self.user, self.password)
        imap.create(folder)  # NO if it exists: fine
        status, _ = imap.select(folder)
        assert status == "OK", folder
        return imap

    def create_folder(self, name: str) -> None:
        with imaplib.IMAP4(self.host, self.port) as imap:
            imap.login(self.user, self.password)
            imap.create(name)

    def append(self, raw: bytes, folder: str = "INBOX", flags: str = "") -> None:
        with imaplib.IMAP4(self.host, self.port) as imap:
            imap.login(self.user, self.password)
            status, detail = imap.append(folder, f"({flags})" if flags else None, None, raw)
            assert status == "OK", detail

    def uids(self, folder: str = "INBOX") -> list[int]:
        imap = self._session(folder)
        try:
            _, data = imap.uid("SEARCH", "ALL")
            return [int(uid) for uid in (data[0] or b"").split()]
        finally:
            imap.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        imap = self._session(folder)
        try:
            _, data = imap.uid("FETCH", "1:*", "(FLAGS)")
            found = {}
            for line in data:
                if isinstance(line, bytes) and (m := re.search(rb"UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+)", line)):
                    uid = int(m.group(1) or m.group(4))
                    found[uid] = set((m.group(2) or m.group(3) or b"").decode().split())
            return found
        finally:
            imap.logout()

    def fetch(self, folder: str, uid: int) -> bytes:
        imap = self._session(folder)
        try:
            _, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
            return next(part[1] for part in data if isinstance(part, tuple))
        finally:
            imap.logout()


@contextlib.contextmanager
def temporary_dovecot() -> Iterator[Dovecot]:
    """A running Dovecot in a folder of its own, removed afterwards. Not under pytest's
    tmp_path: its parents are 0700 under root, closed to Dovecot's unprivileged users."""
    folder = Path(tempfile.mkdtemp(prefix="deskstream-dovecot-"))
    try:
        with Dovecot(folder) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Archive:
    """Where the relay files a copy of the mail sent to `address` (a Bcc): `folder` of
    the Dovecot account, as a relay delivering to an archive mailbox would."""

    dovecot: "Dovecot"
    address: str
    folder: str = "Sent"


class _Keeper:
    """aiosmtpd handler: keeps each mail as received, recipients in lower case so tests
    can look an address up whatever case the sender used; files the archive's copy
    before answering 250, so a mail the server took is in the archive."""

    def __init__(self, messages: list[tuple[str, list[str], bytes]], arrivals: list[float], archive: Archive | None) -> None:
        self.messages = messages
        self.arrivals = arrivals
        self.archive = archive

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipients = [r.lower() for r in envelope.rcpt_tos]
        content = bytes(envelope.original_content or envelope.content)
        if self.archive is not None and self.archive.address.lower() in recipients:
            self.archive.dovecot.append(content, self.archive.folder)
        self.arrivals.append(time.time())  # first: a reader zipping the two never sees a message without its time
        self.messages.append((envelope.mail_from, recipients, content))
        return "250 Message accepted for delivery"


class SmtpCapture:
    """An SMTP server on loopback that keeps (envelope sender, recipients, bytes), and
    when each arrived (epoch seconds, in `arrivals`, in the same order)."""

    def __init__(self, archive: Archive | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.arrivals: list[float] = []
        self.archive = archive
        if archive is not None:
            archive.dovecot.create_folder(archive.folder)
        self._controller = Controller(_Keeper(self.messages, self.arrivals, archive), hostname=self.host, port=self.port)

    def start(self) -> "SmtpCapture":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[str, list[str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return list(self.messages)

    def __enter__(self) -> "SmtpCapture":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
