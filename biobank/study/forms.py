from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

DISEASE_CHOICES = [
    SelectChoice("de_novo", _l("de novo")),
    SelectChoice("relapsed", _l("relapsed")),
    SelectChoice("refractory", _l("refractory")),
]


class ParticipantForm(FlaskForm):
    code = StringField(
        _l("Study code"),
        validators=[DataRequired(), Length(max=32)],
        description=_l("Pseudonymised code such as LIM-001. Never a name."),
    )
    site = SelectField(_l("Centre"), validators=[DataRequired()])
    arm = SelectField(_l("Arm"), validators=[DataRequired()])
    disease_status = SelectField(_l("Disease status"), choices=DISEASE_CHOICES)
    included_on = DateField(_l("Inclusion date"), validators=[DataRequired()])
    consent_given_on = DateField(_l("Biobank consent signed on"), validators=[DataRequired()])


class WithdrawConsentForm(FlaskForm):
    withdrawn_on = DateField(_l("Consent withdrawn on"), validators=[DataRequired()])


class SiteForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=16)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    timezone = StringField(
        _l("Time zone"), default="Europe/Paris", validators=[DataRequired(), Length(max=64)]
    )
    is_central = BooleanField(_l("Central biobank"))
