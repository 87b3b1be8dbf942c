from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional

PASSWORD_HINT = _l(
    "At least 10 characters, and hard to guess: a few unrelated, uncommon words make a "
    "strong password."
)


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    next = HiddenField()


class LanguageForm(FlaskForm):
    lang = SelectField(
        _l("Language"), choices=[SelectChoice("en", "English"), SelectChoice("fr", "Français")]
    )
    next = HiddenField()


class LogoutForm(FlaskForm):
    pass


class UserForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    role = SelectField(_l("Role"))
    site = SelectField(
        _l("Centre"), description=_l("Empty: the central biobank, sees every centre.")
    )
    email = EmailField(
        _l("E-mail"),
        validators=[Optional(), Length(max=200)],
        description=_l("Optional: where the account's notifications are sent."),
    )
    password = PasswordField(_l("Password"), validators=[DataRequired()], description=PASSWORD_HINT)


class AccessForm(FlaskForm):
    """An account's role and centre."""

    role = SelectField(_l("Role"))
    site = SelectField(
        _l("Centre"), description=_l("Empty: the central biobank, sees every centre.")
    )


class _NewPassword(FlaskForm):
    password = PasswordField(
        _l("New password"), validators=[DataRequired()], description=PASSWORD_HINT
    )
    password_again = PasswordField(
        _l("New password again"),
        validators=[
            DataRequired(),
            EqualTo("password", message=_l("The two new passwords are not the same.")),
        ],
    )
    revoke_tokens = BooleanField(_l("Also revoke the API tokens"))


class SetPasswordForm(_NewPassword):
    """An administrator gives an account a new password."""


class PasswordChangeForm(_NewPassword):
    """Signed-in users change their own password."""

    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    revoke_tokens = BooleanField(_l("Also revoke my API tokens"))
