from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from biobank.dates import DateText
from biobank.i18n import VALUE_LABELS
from biobank.study.models import LEAVING_REASONS
from biobank.study.services import MAX_LEAVING_NOTE

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
    included_on = DateText(_l("Inclusion date"), validators=[DataRequired()])
    consent_given_on = DateText(_l("Biobank consent signed on"), validators=[DataRequired()])


class WithdrawConsentForm(FlaskForm):
    withdrawn_on = DateText(_l("Consent withdrawn on"), validators=[DataRequired()])


LEAVING_CHOICES = [
    SelectChoice("", _l("— choose why —")),
    *(SelectChoice(code, VALUE_LABELS["leaving"][code]) for code in LEAVING_REASONS),
]


class LeavingForm(FlaskForm):
    """Leaving the study; named like the participant's columns, so that a correction
    starts from the record (``LeavingForm(obj=participant)``)."""

    left_on = DateText(_l("Left the study on"), validators=[DataRequired()])
    left_reason = SelectField(
        _l("Reason"), choices=LEAVING_CHOICES, validators=[InputRequired()], default=""
    )
    left_note = StringField(
        _l("Note"),
        validators=[Optional(), Length(max=MAX_LEAVING_NOTE)],
        description=_l("Required when the reason is “other”."),
    )


class SiteForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=16)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    timezone = StringField(
        _l("Time zone"), default="Europe/Paris", validators=[DataRequired(), Length(max=64)]
    )
    is_central = BooleanField(_l("Central biobank"))
