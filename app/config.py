"""One Settings object for every process, read once from the environment (prefix ``MARID_``)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.db import Database
from app.security.crypto import Keyring, decode_key

if TYPE_CHECKING:
    from app.live.bus import Retention, TopicKind

# Development defaults. They are public, so production refuses to start with any of them.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-in-production"
DEV_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"dev-insecure-encryption-key-32b!").decode()
DEV_DATABASE_URL = "postgresql+asyncpg://marid@127.0.0.1:5432/marid"
DEV_REDIS_URL = "redis://127.0.0.1:6379/0"


class ConfigError(RuntimeError):
    """Raised when the configuration cannot be used; the message names every bad setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARID_", extra="ignore")

    # Production unless said otherwise: a process started without configuration must refuse to run with the
    # public development secrets, not quietly use them. Only `marid dev` sets "dev" for its children.
    env: Literal["dev", "test", "production"] = "production"
    # Mount /dev/... (the mailbox shows every mail with its live reset and invitation links). `marid dev` sets it
    # for the processes it starts; a test may ask for it; production refuses to start with it.
    dev_routes: bool = False
    database_url: str = DEV_DATABASE_URL
    redis_url: str = DEV_REDIS_URL
    # Signs cookies and tokens (itsdangerous).
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    # Master keys (32 bytes each, urlsafe base64), separated by commas: the first encrypts; the others are retired
    # keys, kept only to decrypt what `marid keys rotate` has not re-sealed yet. Empty: MARID_ENCRYPTION_KEY.
    encryption_keys: SecretStr = SecretStr("")
    # The one-key shorthand for MARID_ENCRYPTION_KEYS.
    encryption_key: SecretStr = SecretStr(DEV_ENCRYPTION_KEY)
    base_url: str = "http://127.0.0.1:8000"
    # How many workspace schemas `marid migrate` upgrades at once.
    migrate_concurrency: int = 4
    # Sessions (ASVS 7.3): ended after this much inactivity, and after this long whatever the activity.
    session_idle_minutes: int = 8 * 60
    session_absolute_days: int = 7
    # Actions like disabling 2FA need a password or code proven this recently.
    reauth_minutes: int = 10
    # Outgoing mail; empty host in dev and test: mail stays in the outbox (shown at /dev/mailbox under `marid dev`).
    # Roughly how many events Redis keeps per stream (XADD MAXLEN ~): the workspace activity feed, and each
    # run, swarm and chat session. A reconnecting client older than that is told to reload.
    events_activity_maxlen: int = 10_000
    events_run_maxlen: int = 5_000
    events_session_maxlen: int = 2_000
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = True
    mail_from: str = "Marid <no-reply@marid.local>"
    # DNS servers Marid asks ("127.0.0.1:5353, [::1]:53"; a missing port is 53); empty: the system's resolver.
    # Used to check SSO domain-verification records and to resolve SSO providers' addresses.
    dns_nameservers: str = ""
    # Connections to the platform tables each process keeps open (no overflow: see app/db/database.py).
    db_pool_size: int = 20
    # Requests each API key may make per minute (a burst of this many, then a steady trickle).
    api_key_requests_per_minute: int = 600
    # Tenant connections log in as each workspace's role: keep pools for this many recently used workspaces,
    # with at most this many connections each, kept open (at most workspaces x connections per process).
    tenant_pool_workspaces: int = 32
    tenant_pool_connections: int = 4
    # Where tenant connections go, if not where MARID_DATABASE_URL points (say, PgBouncer); its user and
    # password are ignored (each workspace logs in as itself).
    tenant_database_url: str = ""
    log_level: str = "info"
    # Sandboxes (docs/sandboxing.md). The runner that starts agent steps: "local" (bubblewrap, `marid dev`'s) or
    # "docker" (a hardened container per step, on the engine at MARID_SANDBOX_DOCKER_HOST or DOCKER_HOST).
    sandbox_runner: Literal["local", "docker"] = "local"
    # Steps' files, <dir>/<workspace>/<run>/<step>, kept after the step for the pages (the web process reads them).
    sandbox_files_dir: str = ".marid/files"
    # This host's runner state: a record per local sandbox, the uid pool, the local runner's runtime venv.
    sandbox_state_dir: str = ".marid/sandbox"
    # Where the local runner's agent-runtime venvs are built from ./agent-runtime and cached (one per version of
    # its sources); empty: <state dir>/runtime.
    sandbox_runtime_dir: str = ""
    # Each sandbox runs as a uid of its own from this range (when the worker is root); keep it clear of real users.
    sandbox_uid_base: int = 200_000
    sandbox_uid_count: int = 65_536
    # Run local sandboxes even where no cgroup can be written (rlimits only: no pids limit, coarse memory limit).
    # Production refuses without it; development warns.
    sandbox_allow_unlimited: bool = False
    sandbox_docker_image: str = "marid-agent-runtime:latest"
    sandbox_docker_host: str = ""
    # Days a step's files are kept after their last change; 0 keeps them (the reaper job applies it).
    sandbox_files_retention_days: float = 0
    # LLM gateway (app/llm). The demo model: a scripted OpenAI-compatible server that `marid dev` starts, its
    # base URL (".../v1") and key. Set only by `marid dev`; production refuses to start with it.
    demo_llm_url: str = ""
    demo_llm_key: SecretStr = SecretStr("")
    # Let workspaces point providers at private, loopback or plain-http addresses (a self-hosted Ollama or vLLM
    # next to Marid). Production allows only public https:// endpoints without it; dev and test allow all.
    llm_allow_private_endpoints: bool = False
    # Seconds the gateway waits for a provider: to connect, and for the next piece of an answer.
    llm_connect_timeout: float = 10.0
    llm_read_timeout: float = 300.0
    # Swarms (docs/swarms.md). A long-queue slot runs one swarm's tasks back to back for this long at most, then
    # queues the next one behind the jobs already waiting: one workspace's big swarm cannot keep other
    # workspaces' steps and tasks out of the workers.
    swarm_slot_turn_seconds: float = Field(default=30.0, gt=0)

    @field_validator("dns_nameservers")
    @classmethod
    def _valid_nameservers(cls, value: str) -> str:
        parse_nameservers(value)
        return value

    @property
    def dns_nameserver_list(self) -> list[tuple[str, int]]:
        return parse_nameservers(self.dns_nameservers)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def event_retention(self) -> dict[TopicKind, Retention]:
        from app.live.bus import Retention, TopicKind

        week = 7 * 24 * 3600
        return {
            TopicKind.ACTIVITY: Retention(maxlen=self.events_activity_maxlen),
            TopicKind.RUN: Retention(maxlen=self.events_run_maxlen, ttl_seconds=week),
            TopicKind.SWARM: Retention(maxlen=self.events_run_maxlen, ttl_seconds=week),
            TopicKind.SESSION: Retention(maxlen=self.events_session_maxlen, ttl_seconds=week),
        }

    def master_keys(self) -> list[str]:
        """The configured master keys, the primary first."""
        return split_keys(self.encryption_keys.get_secret_value()) or [self.encryption_key.get_secret_value()]

    def keyring(self) -> Keyring:
        """The master keys that protect every secret Marid stores.

        Called once per process (the web app's lifespan, the worker's start-up, a CLI command), which then
        passes the keyring to whatever needs it: nothing else builds one.
        """
        return Keyring.from_keys(self.master_keys())

    def database(self, keyring: Keyring | None, *, pool_size: int | None = None) -> Database:
        """This process's engines, configured from the settings; ``keyring`` opens workspace role passwords."""
        return Database(
            self.database_url,
            pool_size=pool_size or self.db_pool_size,
            # The app and the worker keep what they use (an overflow connection is closed at check-in: a new
            # log-in per busy request); a command that asks for a small pool keeps the headroom for nesting.
            overflow=0 if pool_size is None else None,
            keyring=keyring,
            tenant_workspaces=self.tenant_pool_workspaces,
            tenant_connections=self.tenant_pool_connections,
            tenant_url=self.tenant_database_url or None,
        )

    @property
    def demo_llm_enabled(self) -> bool:
        """Whether the scripted demo model is offered (``marid dev`` set its address; never in production)."""
        return bool(self.demo_llm_url) and not self.is_production

    @property
    def llm_private_endpoints(self) -> bool:
        """Whether providers may live on private or loopback addresses, or speak plain http."""
        return self.llm_allow_private_endpoints or not self.is_production

    @property
    def dev_routes_enabled(self) -> bool:
        """Whether /dev/... is mounted: asked for (``MARID_DEV_ROUTES``), and never in production."""
        return self.dev_routes and not self.is_production

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix pins the cookie to this host, path / and HTTPS (ASVS 3.3.3).
        return "__Host-marid_session" if self.is_production else "marid_session"

    @property
    def csrf_cookie(self) -> str:
        return "__Host-marid_csrf" if self.is_production else "marid_csrf"

    def problems(self) -> list[str]:
        """Every reason this configuration is unsafe to run in production (empty when fine)."""
        found: list[str] = []
        if not self.is_production:
            return found
        secret = self.secret_key.get_secret_value()
        if secret == DEV_SECRET_KEY or len(secret) < 32:
            found.append("MARID_SECRET_KEY is missing or a default; set at least 32 random characters")
        found.extend(self._key_problems())
        if self.database_url == DEV_DATABASE_URL:
            found.append("MARID_DATABASE_URL is not set")
        if self.redis_url == DEV_REDIS_URL:
            found.append("MARID_REDIS_URL is not set")
        if not self.smtp_host:
            found.append("MARID_SMTP_HOST is not set; Marid cannot send sign-up and invitation mail")
        if not self.base_url.startswith("https://"):
            found.append("MARID_BASE_URL must be the public https:// address of this deployment")
        if self.dev_routes:
            found.append("MARID_DEV_ROUTES is set; it publishes the development mailbox and is for `marid dev` only")
        if self.demo_llm_url:
            found.append("MARID_DEMO_LLM_URL is set; the scripted demo model is for `marid dev` only")
        return found

    def _key_problems(self) -> list[str]:
        single = self.encryption_key.get_secret_value()
        listed = split_keys(self.encryption_keys.get_secret_value())
        if not listed:
            if single == DEV_ENCRYPTION_KEY or not _is_32_byte_key(single):
                return ["MARID_ENCRYPTION_KEY is missing or a default; set 32 random bytes as urlsafe base64"]
            return []
        found: list[str] = []
        if single != DEV_ENCRYPTION_KEY:
            # Two places for the primary key would leave an operator guessing which one encrypts.
            found.append(
                "MARID_ENCRYPTION_KEY and MARID_ENCRYPTION_KEYS are both set; keep only MARID_ENCRYPTION_KEYS "
                "(its first key encrypts)"
            )
        dev_key = decode_key(DEV_ENCRYPTION_KEY)
        seen: dict[bytes, int] = {}
        for number, value in enumerate(listed, 1):
            try:
                key = decode_key(value)
            except ValueError:
                found.append(f"MARID_ENCRYPTION_KEYS: key {number} is not 32 random bytes as urlsafe base64")
                continue
            if key == dev_key:
                found.append(f"MARID_ENCRYPTION_KEYS: key {number} is the public development key")
            elif key in seen:
                found.append(f"MARID_ENCRYPTION_KEYS: key {number} repeats key {seen[key]}; list each key once")
            seen.setdefault(key, number)
        if not found:
            try:
                Keyring.from_keys(listed)
            except ValueError as error:  # two different keys with one id (about one in four billion)
                found.append(f"MARID_ENCRYPTION_KEYS: {error}")
        return found

    def check(self) -> None:
        found = self.problems()
        if found:
            raise ConfigError("Marid refuses to start in production:\n  - " + "\n  - ".join(found))


def parse_nameservers(raw: str) -> list[tuple[str, int]]:
    """(address, port) pairs from "127.0.0.1:5353, [::1]:53, 192.0.2.1"; raises ValueError naming a bad one."""
    found: list[tuple[str, int]] = []
    for part in raw.replace(",", " ").split():
        host, port = part, "53"
        if part.startswith("["):
            host, _, rest = part[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif part.count(":") == 1:
            host, port = part.split(":")
        try:
            address = str(ipaddress.ip_address(host))
            number = int(port)
        except ValueError:
            raise ValueError(f"MARID_DNS_NAMESERVERS: {part!r} is not an IP address with an optional :port") from None
        if not 0 < number < 65536:
            raise ValueError(f"MARID_DNS_NAMESERVERS: {part!r} has no valid port")
        found.append((address, number))
    return found


def split_keys(raw: str) -> list[str]:
    """The keys of a MARID_ENCRYPTION_KEYS value: separated by commas or white space (base64 has neither)."""
    return raw.replace(",", " ").split()


def _is_32_byte_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32
    except (binascii.Error, ValueError):
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; read from the environment on first use only."""
    return Settings()
