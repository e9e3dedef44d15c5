#!/usr/bin/env python3
"""Golden password hashes made by the real Flask-Security, for Rampart's tests.

Rampart must verify the password hashes that an existing Flask-Security
deployment has stored.  This script asks Flask-Security itself (with its
passlib/libpass CryptContext) to hash a few passwords with every scheme Rampart
verifies, exactly as its register/change/reset views do:

    hash_password(_security.password_util.normalize(password))

and writes them to crates/rampart/tests/data/flask_security_hashes.json, which
the unit tests of crates/rampart/src/password.rs read with include_str!, so
the Rust tests need no Python.

Set-up (tested with Python 3.11, Flask-Security 5.9.2, libpass 1.9.4,
argon2-cffi 25.1.0, bcrypt 5.0.0, Flask-SQLAlchemy 3.1.1, SQLAlchemy 2.1):

    python3 -m venv /tmp/fsvenv
    /tmp/fsvenv/bin/pip install 'flask-security>=5.8' 'argon2-cffi>=25.1' \
        'bcrypt>=4.2.1' flask-sqlalchemy
    /tmp/fsvenv/bin/python scripts/flask_security_hashes.py

libpass (the maintained passlib fork that Flask-Security 5.x depends on) works
with bcrypt 4.2+ and 5.x; the old passlib 1.7.4 needs bcrypt<4.1 instead.

Every hash embeds a random salt, so each run gives different (equally valid)
hashes; the output is checked in and only regenerated on purpose.
"""

from __future__ import annotations

import json
import pathlib
import sys
from importlib.metadata import version

from flask import Flask
from flask_security import Security, SQLAlchemyUserDatastore
from flask_security.models import fsqla_v3 as fsqla
from flask_security.utils import get_hmac, hash_password, verify_password
from flask_sqlalchemy import SQLAlchemy

#: SECURITY_PASSWORD_SALT of the test app (the Rust test uses the same one).
SALT = "rampart-golden-salt-0123456789"

#: Plain passwords as a user types them (NOT normalised: Flask-Security
#: normalises with NFKD before hashing, and so must Rampart).
PASSWORDS = [
    "correct horse battery staple",
    # U+FB01 LATIN SMALL LIGATURE FI, composed U+00E9, U+2116 NUMERO SIGN:
    # all three change under NFKD.
    "\ufb01anc\u00e9e-caf\u00e9-\u2116 42",
    # 100 characters: its pre-hash is still 88 characters, so bcrypt's 72-byte
    # truncation applies to the pre-hash, never to the password.
    ("Tr0ub4dor&3-" * 9)[:100].ljust(100, "z"),
]

#: (scheme, label, extra SECURITY_PASSWORD_HASH_PASSLIB_OPTIONS).
CASES = [
    ("argon2", "default", {}),
    # The parameters Rampart's tests use for new hashes (m=1024, t=1, p=1):
    # such a hash is "current" and needs no rehash there.
    (
        "argon2",
        "rampart-test-params",
        {"argon2__memory_cost": 1024, "argon2__rounds": 1, "argon2__parallelism": 1},
    ),
    ("argon2", "argon2i", {"argon2__type": "i"}),
    ("bcrypt", "default", {}),
    ("pbkdf2_sha512", "default", {}),
    ("pbkdf2_sha256", "default", {}),
    ("sha512_crypt", "default", {}),
    ("sha256_crypt", "default", {}),
]

OUTPUT = (
    pathlib.Path(__file__).resolve().parent.parent
    / "crates/rampart/tests/data/flask_security_hashes.json"
)


def make_app(scheme: str, passlib_options: dict) -> tuple[Flask, Security]:
    """A minimal Flask-Security app that hashes with `scheme`."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="rampart-golden-secret",
        SECURITY_PASSWORD_SALT=SALT,
        SECURITY_PASSWORD_HASH=scheme,
        SECURITY_PASSWORD_HASH_PASSLIB_OPTIONS=passlib_options,
        SQLALCHEMY_DATABASE_URI="sqlite://",
    )
    db = SQLAlchemy(app)
    fsqla.FsModels.set_db_info(db)

    class Role(db.Model, fsqla.FsRoleMixin):
        pass

    class User(db.Model, fsqla.FsUserMixin):
        pass

    security = Security(app, SQLAlchemyUserDatastore(db, User, Role))
    return app, security


def main() -> int:
    vectors = []
    prehashes = []
    for scheme, label, options in CASES:
        # Each case needs its own app: the CryptContext is built at init time,
        # and the models are declared once per SQLAlchemy instance.
        fsqla.FsModels.db = None
        app, security = make_app(scheme, options)
        with app.app_context():
            for password in PASSWORDS:
                normalized = security.password_util.normalize(password)
                hashed = hash_password(normalized)
                if not verify_password(normalized, hashed):
                    raise SystemExit(f"{scheme}/{label}: own hash does not verify")
                vectors.append(
                    {
                        "scheme": scheme,
                        "label": label,
                        "password": password,
                        "hash": hashed,
                    }
                )
                if not any(p["password"] == password for p in prehashes):
                    prehashes.append(
                        {
                            "password": password,
                            "normalized": normalized,
                            "hmac": get_hmac(normalized).decode("ascii"),
                        }
                    )

    document = {
        "generator": "scripts/flask_security_hashes.py",
        "salt": SALT,
        "flask_security_version": version("flask-security"),
        "libpass_version": version("libpass"),
        "argon2_cffi_version": version("argon2-cffi"),
        "bcrypt_version": version("bcrypt"),
        "prehashes": prehashes,
        "vectors": vectors,
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {len(vectors)} vectors to {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
