"""The one exception type a caller has to handle when printing."""


class LabelError(ValueError):
    """A label cannot be printed as asked, e.g. the code is too long for the symbol box.

    It subclasses ValueError because the cause is always the input (code, data or
    resolution), never a bug; the message names the template and what would work.
    """
