"""Configuration classes, chosen by MYAPP_ENV (production, development, testing).

Every key here can be overridden by an environment variable of the same name
(see myapp/settings.py); DATABASE_URL sets SQLALCHEMY_DATABASE_URI.
"""


class Config:
    # Secrets: no defaults. Production refuses to start without strong ones.
    SECRET_KEY: str | None = None
    JWT_SECRET_KEY: str | None = None

    # Real components. Production must set both; development derives defaults.
    SQLALCHEMY_DATABASE_URI: str | None = None
    REDIS_URL: str | None = None
    # Seconds a Redis call may take before the request gives up (503).
    REDIS_SOCKET_TIMEOUT = 0.5
    # PostgreSQL guards (seconds, milliseconds): a stuck server must not hang workers.
    # A request waits on the database for one statement's time at most, plus
    # half a second (myapp/stalls.py); 2 s is the least libpq connects within.
    DATABASE_CONNECT_TIMEOUT = 2
    DATABASE_STATEMENT_TIMEOUT_MS = 2000
    DATABASE_LOCK_TIMEOUT_MS = 1000
    # DATABASE_URL is a pooler in transaction mode (PgBouncer pool_mode=transaction):
    # no server-side prepared statements and no startup options, which a pooled
    # server connection cannot keep; the two timeouts above are then the database
    # role's (ALTER ROLE ... SET, see the README's "Scaling out").
    DATABASE_TRANSACTION_POOLER = False
    # Threads per worker process (gunicorn.conf.py and myapp.ini read it too). Each
    # process lets one thread fewer than it has use the database at once (its
    # database slots, myapp/stalls.py), so a thread is always left for /healthz,
    # /readiness and requests that need no database, even while every slot waits
    # on a stalled one.
    WEB_THREADS = 4

    # HTTP behaviour
    MAX_CONTENT_LENGTH = 1024 * 1024
    CORS_ORIGINS: list[str] = []
    # How many reverse proxies (nginx) sit in front; their X-Forwarded-* are trusted.
    TRUSTED_PROXIES = 0
    # A Host header is the client's to choose. PUBLIC_BASE_URL (https://api.example.com)
    # is where the API is reached: links are made from it. TRUSTED_HOSTS lists the
    # host names requests may name (default: PUBLIC_BASE_URL's); any other is a 400.
    # Production needs one of the two.
    PUBLIC_BASE_URL = ""
    TRUSTED_HOSTS: list[str] = []
    # Clients that may read /metrics (a Prometheus on this host by default); to
    # anyone else it does not exist (404), whichever port they came in by.
    METRICS_NETWORKS = ["127.0.0.0/8", "::1/128"]
    RESTX_ERROR_404_HELP = False
    RESTX_MASK_SWAGGER = False
    PROPAGATE_EXCEPTIONS = False

    # Tokens (lifetimes in seconds)
    JWT_ACCESS_TOKEN_EXPIRES = 15 * 60
    JWT_REFRESH_TOKEN_EXPIRES = 30 * 24 * 3600
    JWT_ALGORITHM = "HS256"

    # Password hashing (Argon2id); the defaults are argon2-cffi's RFC 9106 profile.
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_COST = 65536
    ARGON2_PARALLELISM = 4

    # Rate limits (myapp/rate_limits.py), as the `limits` package writes them.
    # RATELIMIT_DEFAULT is one budget per identity (user id when signed in, else
    # client address) across every endpoint; signing in (per address and account)
    # and registering (per address) have their own as well.
    RATELIMIT_LOGIN = "5 per minute"
    RATELIMIT_REGISTER = "10 per hour"
    RATELIMIT_DEFAULT = "1000 per hour"

    CACHE_DEFAULT_TIMEOUT = 300
    # The myapp loggers' level (JSON lines on stderr).
    LOG_LEVEL = "INFO"

    # Library rules
    LOAN_DAYS = 14
    MAX_OPEN_LOANS = 5
    # Seconds an Idempotency-Key's response is kept, and a parallel retry waits for it.
    IDEMPOTENCY_TTL = 24 * 3600
    IDEMPOTENCY_WAIT = 10


class ProductionConfig(Config):
    pass


class DevelopmentConfig(Config):
    # Fixed, public development secrets: never valid in production (see settings.py).
    SECRET_KEY = "development-only-secret-key-not-for-production"
    JWT_SECRET_KEY = "development-only-jwt-secret-not-for-production"
    CORS_ORIGINS = ["http://localhost:3000", "http://localhost:5173"]


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-only-secret-key-0123456789abcdef"
    JWT_SECRET_KEY = "testing-only-jwt-secret-0123456789abcdef"
    # Cheap hashes keep the suite fast; the algorithm (Argon2id) is the same.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024
    ARGON2_PARALLELISM = 1
    CORS_ORIGINS = ["https://app.example.test"]


CONFIGS = {
    "production": ProductionConfig,
    "development": DevelopmentConfig,
    "testing": TestingConfig,
}
