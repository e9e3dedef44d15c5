#!/usr/bin/env python3
"""Golden vectors minted by the real Flask-Security 5.9.2, for Rampart's migration tests.

Produces crates/rampart/tests/data/flask_security_vectors.json: a deployment's settings
(SECRET_KEY, SECURITY_PASSWORD_SALT, SECURITY_TOTP_SECRETS, SECURITY_MULTI_FACTOR_RECOVERY_CODES_KEYS),
its users' rows as Flask-Security stored them (fs_uniquifier, email, password hash, tf_totp_secret
in passlib's encrypted JSON, mf_recovery_codes encrypted with Fernet), and every token kind it
hands out, each made by Flask-Security's own code at a fixed mint time:

- `get_auth_token` (remember salt, `{ver, uid, fs_paa, exp}`),
- the remember-me cookie (Flask-Login's, set by a real `POST /login` with `remember`),
- `generate_reset_password_token`, `generate_confirmation_token`, the change-email token
  (`change_email._generate_token`),
- the two-factor setup state (`tf_state_token` of a real `POST /tf-setup` changing the method) and
  the unified sign-in setup state (`state` of a real `POST /us-setup`).

    python3 -m venv /tmp/fs-venv
    /tmp/fs-venv/bin/pip install "Flask-Security==5.9.2" Flask-SQLAlchemy passlib cryptography argon2_cffi qrcode Flask-Mailman
    /tmp/fs-venv/bin/python scripts/flask_security_vectors.py

The Rust tests read the JSON file, so running them needs no Python.
"""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import time
from datetime import timedelta

# Every clock Flask-Security, itsdangerous and passlib read stands still at MINT.
MINT = 1_764_000_000
time.time = lambda: float(MINT)  # noqa: E731

from cryptography.fernet import Fernet  # noqa: E402
from flask import Flask  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402
from flask_security import (  # noqa: E402
    Security,
    SQLAlchemyUserDatastore,
    hash_password,
)
from flask_security.change_email import _generate_token as change_email_token  # noqa: E402
from flask_security.confirmable import generate_confirmation_token  # noqa: E402
from flask_security.models import fsqla_v3 as fsqla  # noqa: E402
from flask_security.recoverable import generate_reset_password_token  # noqa: E402
from passlib.totp import TOTP  # noqa: E402

OUT = (
    pathlib.Path(__file__).resolve().parent.parent
    / "crates/rampart/tests/data/flask_security_vectors.json"
)

SECRET_KEY = "fs-golden-secret-key-0123456789abcdef"
PASSWORD_SALT = "fs-golden-password-salt"
PASSWORD = "battery staple horse"
# Key "1" was the deployment's first TOTP key; "2" the newest (used for writing).
TOTP_SECRETS = {"1": "first-totp-key-Ql8wzPq2", "2": "second-totp-key-Vb71xRt0"}
RECOVERY_KEYS = [
    "b2Rp0nM3bEYb2g9h3V0p7m5QKk1x2q8cP1o4s6u8w0E=",
    "Y3Jvc3NpbmctdGhlLXJpdmVyLWF0LWRhd24tMTIzNDU=",
]
for k in RECOVERY_KEYS:
    Fernet(k)  # a valid key

db = SQLAlchemy()
fsqla.FsModels.set_db_info(db)


class Role(db.Model, fsqla.FsRoleMixin):
    pass


class User(db.Model, fsqla.FsUserMixin):
    pass


def make_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SECURITY_PASSWORD_SALT=PASSWORD_SALT,
        SQLALCHEMY_DATABASE_URI="sqlite://",
        WTF_CSRF_ENABLED=False,
        SECURITY_CSRF_IGNORE_UNAUTH_ENDPOINTS=True,
        SECURITY_RETURN_GENERIC_RESPONSES=False,
        SECURITY_CONFIRMABLE=True,
        SECURITY_LOGIN_WITHOUT_CONFIRMATION=True,
        SECURITY_RECOVERABLE=True,
        SECURITY_CHANGE_EMAIL=True,
        SECURITY_TWO_FACTOR=True,
        SECURITY_TWO_FACTOR_ENABLED_METHODS=["email", "authenticator"],
        SECURITY_TOTP_SECRETS=TOTP_SECRETS,
        SECURITY_TOTP_ISSUER="FS Golden",
        SECURITY_MULTI_FACTOR_RECOVERY_CODES=True,
        SECURITY_MULTI_FACTOR_RECOVERY_CODES_KEYS=RECOVERY_KEYS,
        SECURITY_UNIFIED_SIGNIN=True,
        SECURITY_US_ENABLED_METHODS=["password", "email", "authenticator"],
        SECURITY_FRESHNESS_GRACE_PERIOD=timedelta(hours=1),
        # The clock is stopped at MINT for tokens, not for datetime.now(): no reauthentication.
        SECURITY_FRESHNESS=timedelta(days=36500),
        MAIL_SUPPRESS_SEND=True,
    )
    db.init_app(app)
    app.security = Security(app, SQLAlchemyUserDatastore(db, User, Role))
    return app


def row(user: User) -> dict:
    """The user's columns as Flask-Security stored them (raw SQL: the stored text)."""
    stored = db.session.execute(
        db.text(
            "SELECT fs_uniquifier, email, password, tf_primary_method, tf_totp_secret, "
            "mf_recovery_codes FROM user WHERE id = :id"
        ),
        {"id": user.id},
    ).one()
    return dict(stored._mapping)


def main() -> None:
    app = make_app()
    security = app.security
    with app.app_context():
        db.create_all()
        ds = security.datastore
        plain = ds.create_user(
            email="ada@example.com",
            password=hash_password(PASSWORD),
            fs_uniquifier="0d5bb3a2c1f94e0c9a7e3c2b1a0f9e8d",
        )
        tf = ds.create_user(
            email="tf@example.com",
            password=hash_password(PASSWORD),
            fs_uniquifier="7c3e9f2a4b5d4e6f8a9b0c1d2e3f4a5b",
            confirmed_at=security.datetime_factory(),
        )
        db.session.commit()

        # Two-factor with the authenticator: a secret written with the old key "1" (a deployment
        # that rotated keys since) and one with the newest; recovery codes encrypted.
        old_factory = TOTP.using(issuer="FS Golden", secrets={"1": TOTP_SECRETS["1"]})
        old_secret = old_factory.new().to_json(encrypt=True)
        ds.tf_set(tf, "authenticator", totp_secret=old_secret)
        db.session.commit()
        recovery_codes = security.mf_recovery_codes_util.create_recovery_codes(tf)
        db.session.commit()

        tokens = {
            "auth_token": plain.get_auth_token(),
            "reset": generate_reset_password_token(plain),
            "confirm": generate_confirmation_token(plain),
            "change_email": change_email_token(plain, "ada.new@example.com"),
        }
        plain_row = row(plain)

    client = app.test_client()
    login = client.post(
        "/login",
        json={"email": "ada@example.com", "password": PASSWORD, "remember": True},
    )
    assert login.status_code == 200, login.get_json()
    remember = client.get_cookie("remember_token")
    assert remember is not None
    tokens["remember_cookie"] = remember.value
    us = client.post("/us-setup", json={"chosen_method": "authenticator"})
    assert us.status_code == 200, us.get_json()
    tokens["us_setup_state"] = us.get_json()["response"]["state"]

    tf_client = app.test_client()
    step1 = tf_client.post(
        "/login", json={"email": "tf@example.com", "password": PASSWORD}
    )
    assert step1.get_json()["response"]["tf_required"], step1.get_json()
    with app.app_context():
        code = security.totp_factory.generate_totp_password(old_secret)
    step2 = tf_client.post("/tf-validate", json={"code": code})
    assert step2.status_code == 200, step2.get_json()
    setup = tf_client.post("/tf-setup", json={"setup": "authenticator"})
    assert setup.status_code == 200, setup.get_json()
    tokens["tf_setup_state"] = setup.get_json()["response"]["tf_state_token"]
    assert tokens["tf_setup_state"], setup.get_json()

    with app.app_context():
        tf = security.datastore.find_user(email="tf@example.com")
        tf_row = row(tf)
        factory = security.totp_factory._totp
        # The secrets in plain base32 (what an authenticator app holds), and a code at MINT.
        keys = {}
        for name, stored in [("stored", tf_row["tf_totp_secret"])]:
            keys[name] = factory.from_source(stored).base32_key
        # The secrets the setup states carry (for the code an app would show).
        tf_state = security.tf_setup_serializer.loads(tokens["tf_setup_state"])
        us_state = security.us_setup_serializer.loads(tokens["us_setup_state"])
        state_keys = {
            "tf_setup_state": factory.from_source(tf_state["totp_secret"]).base32_key,
            "us_setup_state": factory.from_source(us_state["totp_secret"]).base32_key,
        }
        new_secret = security.totp_factory.generate_totp_secret()
        new_b32 = factory.from_source(new_secret).base32_key

    data = {
        "comment": "Generated by scripts/flask_security_vectors.py; do not edit.",
        "flask_security_version": importlib.metadata.version("Flask-Security"),
        "passlib_version": importlib.metadata.version("passlib"),
        "mint_time": MINT,
        "settings": {
            "SECRET_KEY": SECRET_KEY,
            "SECURITY_PASSWORD_SALT": PASSWORD_SALT,
            "SECURITY_TOTP_SECRETS": TOTP_SECRETS,
            "SECURITY_MULTI_FACTOR_RECOVERY_CODES_KEYS": RECOVERY_KEYS,
        },
        "password": PASSWORD,
        "users": {
            "plain": plain_row,
            "two_factor": {
                **tf_row,
                "totp_base32": keys["stored"],
                "code_at_mint": security_code(keys["stored"]),
                "recovery_codes": recovery_codes,
            },
        },
        "new_totp_secret": {"stored": new_secret, "base32": new_b32},
        "tokens": tokens,
        "setup_state_base32": state_keys,
        "change_email_new_address": "ada.new@example.com",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(tokens)} tokens to {OUT}")


def security_code(b32: str) -> str:
    return TOTP(key=b32, format="base32").generate(MINT).token


if __name__ == "__main__":
    main()
