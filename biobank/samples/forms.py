"""The visit registration form: one section per primary tube of the sample plan."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
)
from wtforms import DecimalField as _DecimalField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from biobank.dates import DateText, DateTimeText
from biobank.i18n import VALUE_LABELS
from biobank.samples.models import NOT_COLLECTED_REASONS
from biobank.samples.services import MAX_NOT_COLLECTED_NOTE

TEMPERATURE_CHOICES = [
    SelectChoice("RT", _l("Room temperature")),
    SelectChoice("2-10", _l("2–10 °C (refrigerated)")),
]
STORAGE_CHOICES = [
    SelectChoice("-80", _l("−80 °C freezer")),
    SelectChoice("-150", _l("Liquid nitrogen, vapour phase (≤ −150 °C)")),
    SelectChoice("-196", _l("Liquid nitrogen, liquid phase (−196 °C)")),
    SelectChoice("-20", _l("−20 °C freezer")),
]


NOT_COLLECTED_CHOICES = [
    SelectChoice("", _l("— choose why —")),
    *(SelectChoice(code, VALUE_LABELS["not_collected"][code]) for code in NOT_COLLECTED_REASONS),
]


class DecimalField(_DecimalField):
    """Accepts a decimal comma as typed on French keyboards."""

    def process_formdata(self, valuelist):
        super().process_formdata([v.replace(",", ".") for v in valuelist])


def _when(label):
    return DateTimeText(label, validators=[Optional()])


def _named(message: str, label: str, where: str) -> str:
    if message.startswith(label):  # "Blood drawn at: enter a date…" (biobank.dates)
        return where + message[len(label) :]
    return _("%(field)s: %(message)s", field=where, message=message)


class TubeForm(Form):
    tube_type = HiddenField()
    collected = BooleanField(_l("This tube was collected"), default=True)
    not_collected_reason = SelectField(
        _l("Why was it not collected?"), choices=NOT_COLLECTED_CHOICES, default=""
    )
    not_collected_note = StringField(
        _l("Note"),
        validators=[Optional(), Length(max=MAX_NOT_COLLECTED_NOTE)],
        description=_l("Required when the reason is “other”."),
    )
    tube_barcode = StringField(_l("Primary tube barcode (optional)"), validators=[Optional()])
    collected_at = _when(_l("Blood drawn at"))
    received_at = _when(_l("Received in the laboratory at"))
    precentrifugation_temperature = SelectField(
        _l("Kept before centrifugation at"), choices=TEMPERATURE_CHOICES
    )
    spun_at = _when(_l("Centrifugation started at"))
    spin_force_g = IntegerField(
        _l("Force (g)"), default=2000, validators=[Optional(), NumberRange(min=1, max=100000)]
    )
    spin_minutes = IntegerField(
        _l("Duration (min)"), default=10, validators=[Optional(), NumberRange(min=1, max=240)]
    )
    spin_temperature_c = DecimalField(
        _l("Centrifuge temperature (°C)"),
        default=20,
        places=1,
        validators=[Optional(), NumberRange(min=-20, max=45)],
    )
    spin_braking = BooleanField(_l("Brake on"), default=True)
    second_spin = BooleanField(_l("Second centrifugation"), default=False)
    second_spin_force_g = IntegerField(_l("Force (g)"), validators=[Optional()])
    second_spin_minutes = IntegerField(_l("Duration (min)"), validators=[Optional()])
    second_spin_temperature_c = DecimalField(
        _l("Centrifuge temperature (°C)"), validators=[Optional()]
    )
    postcentrifugation_temperature = SelectField(
        _l("Kept after centrifugation at"), choices=TEMPERATURE_CHOICES
    )
    frozen_at = _when(_l("Aliquots frozen at"))
    storage_temperature_c = SelectField(_l("Long-term storage"), choices=STORAGE_CHOICES)
    aliquots = IntegerField(
        _l("Number of aliquots"), validators=[Optional(), NumberRange(min=1, max=50)]
    )
    volume_ul = IntegerField(
        _l("Volume per aliquot (µL)"), validators=[Optional(), NumberRange(min=1, max=10000)]
    )

    REQUIRED_WHEN_COLLECTED = (
        "collected_at",
        "spun_at",
        "frozen_at",
        "spin_force_g",
        "spin_minutes",
        "spin_temperature_c",
    )
    REQUIRED_WHEN_SECOND_SPIN = (
        "second_spin_force_g",
        "second_spin_minutes",
        "second_spin_temperature_c",
    )

    def validate(self, extra_validators=None):
        ok = self._validate_tube(extra_validators)
        self._name_tube_in_messages()
        return ok

    def _name_tube_in_messages(self) -> None:
        """Each message names its field and the tube ("Blood drawn at (tube SST): …"):
        every tube has the same fields, and six "Required for a collected tube." in the
        summary at the top of the page would not say which to correct."""
        for field in self:
            label = str(field.label.text)
            where = _("%(field)s (tube %(tube)s)", field=label, tube=self.tube_type.data)
            field.errors = [_named(str(message), label, where) for message in field.errors]

    def _validate_tube(self, extra_validators) -> bool:
        if not self.collected.data:  # a tube not collected: only why is read
            return self._validate_not_collected()
        ok = super().validate(extra_validators)
        required = list(self.REQUIRED_WHEN_COLLECTED)
        if self.second_spin.data:
            required += self.REQUIRED_WHEN_SECOND_SPIN
        for name in required:
            field = self[name]
            # A value typed wrong is empty too, and says so already.
            if (field.data is None or field.data == "") and not field.errors:
                field.errors = [*field.errors, _l("Required for a collected tube.")]
                ok = False
        return ok

    def _validate_not_collected(self) -> bool:
        reason, note = self.not_collected_reason, self.not_collected_note
        ok = reason.validate(self)
        ok = note.validate(self) and ok
        if ok and not reason.data:
            reason.errors = [*reason.errors, _l("Say why this tube was not collected.")]
            return False
        if ok and reason.data == "other" and not (note.data or "").strip():
            note.errors = [*note.errors, _l("Required when the reason is “other”.")]
            return False
        return ok


class RegistrationForm(FlaskForm):
    visit = SelectField(_l("Visit"), validators=[InputRequired()])
    # Read only when no tube could be drawn: otherwise the first draw dates the visit.
    collected_on = DateText(
        _l("Date of the visit"),
        validators=[Optional()],
        description=_l("Only when no tube could be drawn: the day the participant came."),
    )
    tubes = FieldList(FormField(TubeForm))

    def no_tube_collected(self) -> bool:
        return not any(tube.form.collected.data for tube in self.tubes)

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        if self.no_tube_collected() and self.collected_on.data is None:
            if not self.collected_on.errors:  # a date typed wrong says so already
                self.collected_on.errors = [_l("No tube was drawn: enter the date of the visit.")]
            return False
        return ok


class FindParticipantForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form

    participant = StringField(_l("Participant study code"), validators=[InputRequired()])
