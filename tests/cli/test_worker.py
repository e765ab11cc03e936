"""`marid worker --queue NAME`: the queues it knows, and a plain refusal of any other name."""

from __future__ import annotations

import subprocess
import sys


def _marid(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=60)


def test_an_unknown_queue_is_refused_before_anything_starts() -> None:
    result = _marid("worker", "--queue", "bogus")
    assert result.returncode == 2
    assert "argument --queue: invalid choice: 'bogus' (choose from 'short', 'long', 'all')" in result.stderr
    assert result.stdout == ""


def test_the_help_names_the_queues_and_the_default() -> None:
    result = _marid("worker", "--help")
    assert result.returncode == 0
    help_text = " ".join(result.stdout.split())
    assert "--queue {short,long,all}" in help_text
    assert "all (the default: both, in this one process" in help_text


def test_the_sweeps_do_not_bury_the_log() -> None:
    import logging

    from worker.run import QuietSweeps

    def line(level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord("arq.worker", level, __file__, 1, message, None, None)

    quiet = QuietSweeps()
    assert not quiet.filter(line(logging.INFO, "  1.01s → cron:app.audit.jobs.relay_audit_outbox()"))
    assert not quiet.filter(line(logging.INFO, "  0.00s ← cron:app.audit.jobs.relay_audit_outbox ● 0"))
    assert quiet.filter(line(logging.WARNING, "  0.20s ! cron:app.audit.jobs.relay_audit_outbox failed"))
    assert quiet.filter(line(logging.INFO, "  0.05s → 1f2e:app.mail.jobs.deliver_mail()"))
