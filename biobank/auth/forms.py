from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional


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
    password = PasswordField(
        _l("Password"), validators=[DataRequired()], description=_l("At least 10 characters.")
    )
