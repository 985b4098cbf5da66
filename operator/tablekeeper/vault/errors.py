"""The vault's errors: one hierarchy, raised at the seams, never a lower-level one.

Every message reads "verb object: cause", e.g.
``put file:///var/vault/backups/x/manifest: disk full (ENOSPC)`` or
``get s3://bucket/prefix/chunks/ab: access denied (AccessDenied): ...``.

::

    VaultError                 anything the vault cannot do; also bad URLs, bad key files,
    │                          bad object keys and a folder the process may not write
    ├── ObjectNotFound         get of a key that does not exist
    ├── ObjectExists           put(..., if_absent=True) of a key that exists
    ├── StoreUnavailable       the store cannot be reached or will not serve us: unreachable
    │                          endpoint, timeouts, 5xx or throttling after retries, bad
    │                          credentials or permissions, a missing bucket (message says which)
    ├── StoreFull              no space left (ENOSPC) or over quota (EDQUOT)
    ├── IntegrityError         an object is not what was written: altered, truncated,
    │                          corrupted, or moved to another name (authentication failed)
    └── WrongKey               the object was sealed with another key than the one given

``WrongKey`` is told apart from ``IntegrityError`` by the key id in the sealed
object's header, so a wrong vault key is reported as such and never as
corruption (and never as garbage data).
"""

from __future__ import annotations


class VaultError(Exception):
    """The vault could not do what was asked: "verb object: cause"."""


class ObjectNotFound(VaultError):
    """get() of a key that does not exist in the store."""


class ObjectExists(VaultError):
    """put(..., if_absent=True) of a key that already exists."""


class StoreUnavailable(VaultError):
    """The store is unreachable, too slow, failing, or refuses our credentials.

    The message names the cause (connection refused, timeout, AccessDenied,
    InvalidAccessKeyId, SignatureDoesNotMatch, NoSuchBucket, ...).
    """


class StoreFull(VaultError):
    """The store has no room: disk full (ENOSPC) or quota exceeded (EDQUOT)."""


class IntegrityError(VaultError):
    """An object failed its checksum or its authentication: it is not what was written."""


class WrongKey(VaultError):
    """The key given is not the one the object was sealed (or wrapped) with."""
