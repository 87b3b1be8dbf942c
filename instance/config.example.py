# Copy to instance/config.py and edit. Environment variables override these values.

# Leave SECRET_KEY unset: a random key is generated at the first start and kept in
# instance/secret_key (mode 0600). Set it (32 bytes or more) only to share one key
# between several machines, e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'
# SECRET_KEY = "..."

# "production" turns HTTPS on (Secure cookies, HSTS).
# BIOBANK_ENV = "production"

# PostgreSQL in production (or set DATABASE_URL in the environment):
# SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://biobank@localhost/biobank"

# Behind one reverse proxy (nginx, Apache) that sets X-Forwarded-For and -Proto:
# PROXY_HOPS = 1

# Failed sign-ins are counted per process by default; with several gunicorn workers:
# RATELIMIT_STORAGE_URI = "redis://127.0.0.1:6379"

# The largest request body, in bytes (give the proxy the same limit):
# MAX_CONTENT_LENGTH = 16 * 1024 * 1024

# Another protocol file than the shipped POEMS trial protocol:
# PROTOCOL_FILE = "/etc/biobank/protocol.toml"
