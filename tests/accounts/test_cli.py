"""The command line: JSON out, one-line errors with exit status 1 (issue: Foundation)."""

import json

import pytest

from app.accounts.models import Account, User
from app.extensions import db
from app.security import password_policy
from app.security.passwords import verify_password


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args, stdin=None):
        return runner.invoke(args=list(args), input=stdin)

    return run


def test_accounts_create_prints_json(app, cli):
    result = cli("accounts", "create", "--name", "Acme")
    assert result.exit_code == 0
    assert json.loads(result.output)["account"]["name"] == "Acme"
    with app.app_context():
        assert Account.by_name("Acme") is not None


def test_users_create_reads_the_password_from_stdin(app, cli):
    cli("accounts", "create", "--name", "Acme")
    result = cli(
        "users", "create", "--account", "Acme", "--email", "Ann@Acme.Test", "--name", "Ann", "--role", "owner",
        "--password-stdin", stdin="a long enough secret\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)["user"]
    assert created["email"] == "ann@acme.test" and created["role"] == "owner"
    assert "a long enough secret" not in result.output
    with app.app_context():
        user = User.by_email("ann@acme.test")
        assert user.password_hash.startswith("$argon2id$")
        assert verify_password(user.password_hash, "a long enough secret")


USER_ARGS = ["users", "create", "--account", "Acme", "--email", "b@acme.test", "--name", "B"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["accounts", "create", "--name", ""], None, "account name must be"),
        ([*USER_ARGS, "--role", "admin", "--password-stdin"], "long enough pw\n", "role must be one of"),
        ([*USER_ARGS, "--role", "owner", "--password-stdin"], "fourteen chars\n", "Use at least 15 characters"),
        ([*USER_ARGS, "--role", "owner", "--password-stdin"], "1q2w3e4r5t6y7u8i9o0p\n", "list of common passwords"),
        ([*USER_ARGS, "--role", "owner", "--password-stdin"], "b@acme.testb@acme.test\n", "mostly your e-mail"),
        ([*USER_ARGS, "--role", "owner"], "long enough pw\n", "pass --password-stdin"),
        (
            [
                "users",
                "create",
                "--account",
                "Nope",
                "--email",
                "c@x.test",
                "--name",
                "C",
                "--role",
                "member",
                "--password-stdin",
            ],
            "long enough pw\n",
            "no account named 'Nope'",
        ),
        (
            [
                "users",
                "create",
                "--account",
                "Acme",
                "--email",
                "not-an-email",
                "--name",
                "C",
                "--role",
                "member",
                "--password-stdin",
            ],
            "long enough pw\n",
            "not a usable e-mail",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_1(app, cli, args, stdin, message):
    cli("accounts", "create", "--name", "Acme")
    result = cli(*args, stdin=stdin)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    with app.app_context():
        assert db.session.query(User).count() == 0


def test_duplicates_are_refused(app, cli):
    cli("accounts", "create", "--name", "Acme")
    assert cli("accounts", "create", "--name", "Acme").exit_code == 1
    ok = [*USER_ARGS, "--role", "member", "--password-stdin"]
    assert cli(*ok, stdin="a long enough secret\n").exit_code == 0
    again = cli(*ok, stdin="a long enough secret\n")
    assert again.exit_code == 1 and "already exists" in again.output


def test_demo_loads_once_and_saves_the_credentials(app, cli, tmp_path):
    app.instance_path = str(tmp_path)
    first = cli("demo")
    assert first.exit_code == 0
    loaded = json.loads(first.output)
    assert [u["role"] for u in loaded["users"]] == ["owner", "member"]
    with app.app_context():  # the demo's passwords follow the rule every password follows
        assert [password_policy.problem(u["password"], has_second_factor=False) for u in loaded["users"]] == [None] * 2
    assert loaded["client"]["client_secret"].startswith("ghs_")
    assert loaded["client"]["redirect_uris"] == ["http://127.0.0.1:5001/auth/callback"]
    saved = json.loads((tmp_path / "demo-credentials.json").read_text())
    assert saved["users"][0]["password"] == loaded["users"][0]["password"]
    assert oct((tmp_path / "demo-credentials.json").stat().st_mode)[-3:] == "600"
    second = cli("demo")
    assert json.loads(second.output)["demo"] == "already loaded"
    assert "password" not in second.output


def test_demo_loaded_before_the_client_app_gets_its_client(app, cli, tmp_path):
    app.instance_path = str(tmp_path)
    cli("demo")
    saved = json.loads((tmp_path / "demo-credentials.json").read_text())
    del saved["client"]
    (tmp_path / "demo-credentials.json").write_text(json.dumps(saved))
    added = cli("demo")
    assert added.exit_code == 0 and "client added" in added.output
    assert json.loads((tmp_path / "demo-credentials.json").read_text())["client"]["client_secret"].startswith("ghs_")
    assert "client added" not in cli("demo").output
