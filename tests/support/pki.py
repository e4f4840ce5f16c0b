"""A throwaway PKI made with openssl: a CA, a client certificate it signed (like the Secret
Strimzi makes for a `KafkaUser`), a server certificate for 127.0.0.1, and an unrelated key."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_pki(d: Path) -> dict[str, Path]:
    """Files by name with `_` for the dot: ca_crt, user_crt, user_key, server_crt, server_key, other_key."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    subj = ("-nodes", "-newkey", "rsa:2048")
    run("req", "-x509", *subj, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test-ca")
    for name, extra in (("user", []), ("server", ["-addext", "subjectAltName=IP:127.0.0.1"])):
        run("req", *subj, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", *extra)
        copy = ["-copy_extensions", "copy"] if extra else []
        run(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", *copy,
        )  # fmt: skip
    run("req", *subj, "-keyout", "other.key", "-out", "other.csr", "-subj", "/CN=other")
    return {p.name.replace(".", "_"): p for p in d.iterdir()}
