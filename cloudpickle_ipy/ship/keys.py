"""The key that signs one comm's envelopes, agreed by the client and the agent when the comm opens.

A client that reaches the kernel through a Jupyter Server's websocket never sees the kernel's
connection key, and a shared connection key would let every client of a kernel open every other
client's envelopes. So each comm gets a key of its own, by finite-field Diffie-Hellman in the
2048-bit MODP group of RFC 3526 (group 14; ``pow`` is all it needs, and the agent must run on the
standard library alone): the client sends its public value in the ``comm_open`` data, the agent
answers with its own in the ``hello``, and both hash the shared secret with the comm id and the two
public values into a 32-byte HMAC key. Neither the key nor the secret ever travels.

Jupyter signs those two messages with the connection key on every hop that carries ZeroMQ (and a
websocket's hop is the server's, behind its token and, with https, TLS), so someone on the path who
can read messages but not sign them learns nothing that opens or forges an envelope. What it cannot
protect against is anyone who can run code in the kernel, or the server itself: they can read the
agent's keys, as they can read everything else there.
"""
import hashlib
import secrets

# RFC 3526, section 3: the 2048-bit MODP group (a safe prime; generator 2).
P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)
G = 2
_BYTES = (P.bit_length() + 7) // 8
_EXPONENT_BITS = 256  # at least twice the group's ~112-bit strength


class BadPublicValue(ValueError):
    """A public value that is not one: the comm is refused."""


def offer():
    """``(private, public)``: the client's half; ``public`` (hex) goes in the ``comm_open`` data."""
    private = secrets.randbits(_EXPONENT_BITS) | 1 << (_EXPONENT_BITS - 1)
    return private, format(pow(G, private, P), "x")


def answer(client_public, comm_id):
    """The agent's half: ``(its public value, the comm's key)`` for ``client_public``."""
    private, public = offer()
    return public, _key(comm_id, client_public, public, _shared(client_public, private))


def finish(private, client_public, agent_public, comm_id):
    """The client's key for the comm, from its ``offer()`` and the agent's public value."""
    return _key(comm_id, client_public, agent_public, _shared(agent_public, private))


def _shared(public, private):
    try:
        value = int(public, 16)
    except (TypeError, ValueError):
        raise BadPublicValue("the key exchange sent no public value") from None
    if not 1 < value < P - 1:  # 0, 1 and P-1 would give a secret anyone can guess
        raise BadPublicValue("the key exchange sent an invalid public value")
    return pow(value, private, P)


def _key(comm_id, client_public, agent_public, shared):
    digest = hashlib.sha256(b"cloudpickle_ipy envelope key\0")
    for part in (comm_id, client_public, agent_public):
        digest.update(part.encode() + b"\0")
    digest.update(shared.to_bytes(_BYTES, "big"))
    return digest.digest()
