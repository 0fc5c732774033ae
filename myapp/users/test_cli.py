"""The users CLI: creating an admin from stdin or a prompt."""

import pytest

from myapp.users.models import UserModel
from myapp.users.testing import user_count


def test_create_admin_from_stdin(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "Boss@Example.com", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = UserModel.by_email("boss@example.com")
        assert user.role == "admin" and user.email == "Boss@Example.com"


@pytest.mark.parametrize(
    "email, password, problem",
    [
        ("bad", "a long enough password", "email"),
        ("ok@example.com", "short", "password"),
    ],
)
def test_create_admin_rejects_bad_input(app, email, password, problem):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", email, "--password-stdin"], input=password + "\n"
    )
    assert result.exit_code != 0 and problem in result.output
    assert user_count(app) == 0


def test_create_admin_refuses_an_existing_email(app, member):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", member.email.upper(), "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code != 0 and "already exists" in result.output


def test_create_admin_prompts_for_the_password(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "prompted@example.com"],
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert UserModel.by_email("prompted@example.com").role == "admin"
