"""The routing hint in a step's prompt lists the values that move the run on before those that send it back."""

from __future__ import annotations

from app.pipelines import load_pipeline
from app.runs.engine import routing_hint

PIPELINE = """
id: hints
name: Hints
version: '1'
agents: [{id: finn, name: Finn}]
steps:
  - {id: BUILD, agent: finn, input: build, outputs: [notes], onComplete: REVIEW}
  - id: REVIEW
    agent: finn
    input: review
    outputs: [review_verdict, review_notes]
    onResult:
      CHANGES_REQUESTED: {goto: BUILD}
      AGAIN: {retry: true}
      APPROVED: {goto: SHIP}
  - {id: SHIP, agent: finn, input: ship, outputs: [shipped]}
"""


def test_values_that_go_on_come_first() -> None:
    loaded = load_pipeline(PIPELINE)
    pipeline = loaded.pipeline
    assert pipeline is not None, loaded.problems
    review = pipeline.step("REVIEW")
    assert review is not None
    assert routing_hint(pipeline, review) == {"review_verdict": ("APPROVED", "CHANGES_REQUESTED", "AGAIN")}
    build = pipeline.step("BUILD")
    assert build is not None and routing_hint(pipeline, build) == {}
