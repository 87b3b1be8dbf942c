from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice, SelectMultipleField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

DPI_CHOICES = [
    SelectChoice("", _l("the template's or printer's own")),
    SelectChoice("203", "203 dpi"),
    SelectChoice("300", "300 dpi"),
    SelectChoice("600", "600 dpi"),
]


class PrintForm(FlaskForm):
    barcodes = SelectMultipleField(_l("Aliquots"), validate_choice=False)
    template = SelectField(_l("Label"), validators=[DataRequired()])
    output = SelectField(_l("Output"), validators=[DataRequired()])
    dpi = SelectField(_l("Resolution"), choices=DPI_CHOICES, validators=[Optional()])
    reason = StringField(
        _l("Reason for a reprint"),
        validators=[Optional(), Length(max=500)],
        description=_l(
            "Required when this label was printed before for one of these aliquots, "
            "e.g. “label torn”. Another label (the cap label) is a first print."
        ),
    )
    next = HiddenField()


class PrinterForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=64)])
    host = StringField(_l("Host name or address"), validators=[DataRequired(), Length(max=255)])
    port = IntegerField(_l("Port"), default=9100, validators=[NumberRange(min=1, max=65535)])
    dpi = SelectField(_l("Resolution"), choices=DPI_CHOICES[1:], default="203")
    location = StringField(_l("Where it stands"), validators=[Optional(), Length(max=200)])


class TemplateForm(FlaskForm):
    source = TextAreaField(
        _l("Template (TOML)"),
        validators=[DataRequired()],
        render_kw={"rows": 18, "spellcheck": "false"},
    )


class BoxLabelForm(FlaskForm):
    code = StringField(_l("Box barcode"), validators=[DataRequired(), Length(max=40)])
    name = StringField(
        _l("Box name"),
        validators=[Optional(), Length(max=100)],
        description=_l("e.g. “POEMS serum 012”"),
    )
    contents = StringField(
        _l("Contents"),
        validators=[Optional(), Length(max=200)],
        description=_l("One line, e.g. “LIM BL–M6, serum, −80 °C”"),
    )
    copies = IntegerField(_l("Copies"), default=1, validators=[NumberRange(min=1, max=20)])
    output = SelectField(_l("Output"), validators=[DataRequired()])
