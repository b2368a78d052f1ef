"""A throwaway OpenLDAP server (Debian's slapd) in a temporary directory, for proxy authentication tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.helpers import free_port

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SUFFIX = "dc=guard,dc=test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-e2e"
PEOPLE = f"ou=people,{SUFFIX}"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {directory}/slapd.pid
database mdb
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {directory}/db
"""


def _entries(users: dict[str, str]) -> str:
    out = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: guard\no: guard\n",
           f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n"]
    out += [f"dn: cn={name},{PEOPLE}\nobjectClass: inetOrgPerson\ncn: {name}\nsn: {name}\n"
            f"userPassword: {password}\n" for name, password in users.items()]
    return "\n".join(out)


def slapd_available() -> bool:
    return SLAPD.exists() and SLAPADD.exists()


@dataclass
class LdapServer:
    """slapd on a free loopback port with one organisation, ``ou=people``, and the given users."""

    directory: Path
    users: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def proxyauth(self) -> str:
        """mitmproxy's ``proxyauth`` value: look users up under ou=people by cn, then bind as them."""
        return f"ldap:127.0.0.1:{self.port}:{ADMIN_DN}:{ADMIN_PASSWORD}:{PEOPLE}"

    def start(self, timeout: float = 20.0) -> LdapServer:
        (self.directory / "db").mkdir(parents=True, exist_ok=True)
        config = self.directory / "slapd.conf"
        config.write_text(CONFIG.format(directory=self.directory, suffix=SUFFIX, admin=ADMIN_DN,
                                        password=ADMIN_PASSWORD), encoding="utf-8")
        data = self.directory / "data.ldif"
        data.write_text(_entries(self.users), encoding="utf-8")
        subprocess.run([str(SLAPADD), "-f", str(config), "-l", str(data)], check=True, capture_output=True,
                       timeout=30)
        # -d keeps slapd in the foreground, so it is this process and stopping it is certain.
        with (self.directory / "slapd.log").open("wb") as log:
            self.process = subprocess.Popen([str(SLAPD), "-f", str(config), "-h",
                                             f"ldap://127.0.0.1:{self.port}/", "-d", "0"],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"slapd did not listen in {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
