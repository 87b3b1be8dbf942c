"""The filters of the completeness page: a GET form, so no CSRF token. The centres and
arms offered come from the database and the protocol: they are data, not code."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from biobank.dates import DateText
from biobank.monitoring.completeness import STATUS_WORDS


class CompletenessFilters(FlaskForm):
    class Meta:
        csrf = False  # a GET filter changes nothing

    site = SelectField(_l("Centre"), validators=[Optional()])
    arm = SelectField(_l("Arm"), validators=[Optional()])
    status = SelectField(
        _l("Status"),
        choices=[
            SelectChoice("", _l("all")),
            *(SelectChoice(code, words) for code, words in STATUS_WORDS.items()),
        ],
        validators=[Optional()],
    )
    as_of = DateText(
        _l("As of"), validators=[Optional()], description=_l("Today in each centre if empty.")
    )
    due_by = DateText(
        _l("To draw by"),
        validators=[Optional()],
        description=_l("Due, or with a window opening by that day."),
    )
    page = IntegerField(validators=[Optional(), NumberRange(min=1, max=100_000)])

    def offer(self, sites, arms) -> None:
        """The centres (recruiting ones: the central biobank includes no one) and arms."""
        everyone = SelectChoice("", _l("all"))
        self.site.choices = [everyone, *(SelectChoice(s.code, s.code) for s in sites)]
        self.arm.choices = [everyone, *(SelectChoice(a.code, a.name) for a in arms)]

    def criteria(self) -> dict:
        """What the completeness service takes, from the validated fields."""
        return {
            "site_code": self.site.data or None,
            "arm_code": self.arm.data or None,
            "status": self.status.data or None,
            "as_of": self.as_of.data,
            "due_by": self.due_by.data,
        }

    def shown(self) -> dict[str, str]:
        """The filters as they are in the address, to carry to other links."""
        values = {
            "site": self.site.data,
            "arm": self.arm.data,
            "status": self.status.data,
            "as_of": self.as_of.data.isoformat() if self.as_of.data else "",
            "due_by": self.due_by.data.isoformat() if self.due_by.data else "",
        }
        return {name: value for name, value in values.items() if value}
