"""PostgreSQL backups that are proven: a dump filed with its custody digest, and the
restore drill that restores it into a scratch database and checks it."""
