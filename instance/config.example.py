# Copy to instance/config.py and edit. Environment variables override these values.
import secrets  # noqa: F401  (python -c "import secrets; print(secrets.token_hex(32))")

# Required in production: a long random value, kept out of the repository.
# SECRET_KEY = "paste the output of: python -c 'import secrets; print(secrets.token_hex(32))'"

# "production" refuses to start with the default secret key.
# BIOBANK_ENV = "production"

# PostgreSQL in production (or set DATABASE_URL in the environment):
# SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://biobank@localhost/biobank"

# Serve behind HTTPS only:
# SESSION_COOKIE_SECURE = True
# REMEMBER_COOKIE_SECURE = True

# Another protocol file than the shipped POEMS trial protocol:
# PROTOCOL_FILE = "/etc/biobank/protocol.toml"
