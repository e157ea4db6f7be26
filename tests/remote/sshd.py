"""An SSH server for the tests (asyncssh's, run as its own process): public-key login only, with
the host key and authorized key files given, and local port forwarding (``direct-tcpip`` and
``direct-streamlocal``) allowed. Each forwarded connection is logged as ``forward HOST PORT`` (or
``forward PATH``) on stdout, so a test can see its traffic went through here.

    python -m tests.remote.sshd HOST_KEY AUTHORIZED_KEYS   ->  prints "listening PORT" when ready

Also :func:`make_keys`: a throwaway home whose ``~/.ssh`` trusts that server and holds the key
that logs in, as a user's would.
"""
import asyncio
import sys
from pathlib import Path

import asyncssh


class Server(asyncssh.SSHServer):
    def begin_auth(self, username):
        return True

    def public_key_auth_supported(self):
        return True

    def password_auth_supported(self):
        return False

    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        print(f"forward {dest_host} {dest_port}", flush=True)
        return True

    def unix_connection_requested(self, dest_path):
        print(f"forward {dest_path}", flush=True)
        return True


async def main(host_key, authorized_keys):
    server = await asyncssh.create_server(Server, "127.0.0.1", 0, server_host_keys=[host_key],
                                          authorized_client_keys=authorized_keys)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await server.wait_closed()


def make_keys(folder):
    """``(home, host key file, authorized keys file)``: ``home/.ssh`` holds ``id_ed25519``; call
    :func:`trust` to add the server, once it listens, to its ``known_hosts``."""
    folder = Path(folder)
    ssh = folder / "home" / ".ssh"
    ssh.mkdir(parents=True)
    host = asyncssh.generate_private_key("ssh-ed25519")
    host.write_private_key(folder / "host_key")
    user = asyncssh.generate_private_key("ssh-ed25519")
    user.write_private_key(ssh / "id_ed25519")
    user.write_public_key(ssh / "id_ed25519.pub")
    user.write_public_key(folder / "authorized_keys")
    for path in ssh.iterdir():
        path.chmod(0o600)
    return folder / "home", folder / "host_key", folder / "authorized_keys"


def trust(home, port, host_key):
    """Make ``home``'s ``known_hosts`` trust the server of ``host_key`` at 127.0.0.1:``port``."""
    public = asyncssh.read_private_key(host_key).export_public_key().decode().strip()
    with open(Path(home, ".ssh", "known_hosts"), "a") as f:
        f.write(f"[127.0.0.1]:{port} {public}\n")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
