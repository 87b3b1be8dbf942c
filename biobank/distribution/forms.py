"""Forms of the request pages. The choices (visits, sample types, arms) come from the
current protocol: they are data, not code."""

from __future__ import annotations

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from biobank.distribution.criteria import MAX_FREEZE_THAW, MAX_PER_PARTICIPANT_VISIT, MAX_VOLUME_UL
from biobank.samples import sprec
from biobank.study.forms import DISEASE_CHOICES


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class CriteriaForm(FlaskForm):
    """What to match: shared by the catalogue's filters and the request form."""

    visits = CheckboxesField(_l("Visits"))
    sample_types = CheckboxesField(_l("Sample types"))
    arms = CheckboxesField(_l("Arms"), description=_l("None ticked: every arm."))
    disease_statuses = CheckboxesField(
        _l("Disease status"), choices=DISEASE_CHOICES, description=_l("None ticked: any.")
    )
    min_volume_ul = IntegerField(
        _l("Minimum volume per aliquot (µL)"),
        validators=[Optional(), NumberRange(0, MAX_VOLUME_UL)],
    )
    max_freeze_thaw = IntegerField(
        _l("At most this many freeze–thaw cycles"),
        validators=[Optional(), NumberRange(0, MAX_FREEZE_THAW)],
    )
    within_sop = BooleanField(
        _l("Only samples handled within the SOP"),
        description=_l(
            "Leaves out the samples whose handling broke the protocol's limits (clotting "
            "time, centrifugation, time to freezing) or whose visit was outside its window."
        ),
    )

    def offer(self, protocol) -> None:
        self.visits.choices = [(d.code, f"{d.code} — {d.name}") for d in protocol.visit_definitions]
        kinds = dict.fromkeys(t.sample_type for t in protocol.tube_types)
        language = get_locale().language
        self.sample_types.choices = [(k, sprec.sample_type_name(k, language)) for k in kinds]
        self.arms.choices = [(a.code, f"{a.code} — {a.name}") for a in protocol.arms]

    def criteria_data(self) -> dict:
        return {
            "visits": self.visits.data or [],
            "sample_types": self.sample_types.data or [],
            "arms": self.arms.data or [],
            "disease_statuses": self.disease_statuses.data or [],
            "min_volume_ul": self.min_volume_ul.data,
            "max_freeze_thaw": self.max_freeze_thaw.data,
            "within_sop": self.within_sop.data,
        }


class CatalogueFilterForm(CriteriaForm):
    class Meta:
        csrf = False  # a GET filter changes nothing


class RequestForm(CriteriaForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    aim = TextAreaField(
        _l("Project and aim"),
        validators=[DataRequired(), Length(max=5000)],
        description=_l("What will be measured, and why; the ethics approval reference."),
    )
    per_participant_visit = IntegerField(
        _l("Aliquots per participant and visit"),
        default=1,
        validators=[DataRequired(), NumberRange(1, MAX_PER_PARTICIPANT_VISIT)],
    )
    receiving_lab = StringField(
        _l("Receiving laboratory"), validators=[DataRequired(), Length(max=200)]
    )
    contact_name = StringField(_l("Contact at the laboratory"), validators=[DataRequired()])
    contact_email = EmailField(
        _l("Contact e-mail"),
        validators=[DataRequired(), Length(max=200)],
        description=_l(
            "Notices go to your account's address; this one gets them too once a manager "
            "has confirmed it."
        ),
    )

    def criteria_data(self) -> dict:
        return super().criteria_data() | {"per_participant_visit": self.per_participant_visit.data}
