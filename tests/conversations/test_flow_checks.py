"""A flow declared wrong fails in every test run, not when someone reaches the mistake.

Building a :class:`Flow` refuses duplicate steps and commands that open unknown steps; the
engine refuses references between flows that do not hold. What a step decides at run time
(``Next("resumen")``, a template key) is read here from the flow modules' source: every
step name they name must be a step of their flows, and every template key they write must
be in ``locales/es``.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.texts import Texts
from conversations import desk, status
from conversations.catalog import all_flows
from conversations.engine import Engine, Intents
from conversations.flow import Flow, FlowError, Step, question
from conversations.names import FlowName
from conversations.text import IntentMatcher
from tests.memory_ports import KeyLabels

MODULES = sorted((Path(__file__).parents[2] / "conversations").glob("*.py"))
KEYS = set(Texts().sources)

ask = question("common.error")


# ----------------------------------------------------------- at declaration
def test_a_flow_with_two_steps_of_one_name_is_refused() -> None:
    with pytest.raises(FlowError, match="declares steps twice: uno"):
        Flow(FlowName.HELP, (Step("uno", ask), Step("dos", ask), Step("uno", ask)))


def test_a_command_that_opens_an_unknown_step_is_refused() -> None:
    with pytest.raises(FlowError, match="unknown steps"):
        Flow(FlowName.DESK, (Step("cola", ask),), commands={"ticket": "fiche"})


def test_a_flow_without_steps_or_with_an_empty_undo_set_is_refused() -> None:
    with pytest.raises(FlowError, match="no steps"):
        Flow(FlowName.HELP, ())
    with pytest.raises(FlowError, match="undo_keys is empty"):
        Flow(FlowName.HELP, (Step("uno", ask),), undo_keys=frozenset())


def test_a_table_that_names_a_missing_step_is_refused() -> None:
    with pytest.raises(FlowError, match=r"has no steps \['resumenn'\]"):
        Flow(FlowName.HELP, (Step("resumen", ask),)).require("resumen", "resumenn")


def _engine(*flows: Flow, faq: dict[str, str] | None = None) -> Engine:
    intents = Intents({}, IntentMatcher({}), faq or {})
    return Engine(list(flows), KeyLabels(), intents)


def test_the_engine_refuses_two_flows_of_one_name() -> None:
    with pytest.raises(FlowError, match="share a name"):
        _engine(*all_flows(), status.FLOW)


def test_the_engine_refuses_a_step_another_flow_opens_that_is_gone() -> None:
    """A ticket number typed by staff opens the desk's card: without it, no engine."""
    steps = tuple(step for step in desk.FLOW.steps if step.name != "ficha")
    broken = dataclasses.replace(desk.FLOW, steps=steps, commands={})
    flows = [broken if flow.name == FlowName.DESK else flow for flow in all_flows()]
    with pytest.raises(FlowError, match=r"mesa has no steps \['ficha'\]"):
        _engine(*flows)


def test_the_engine_refuses_a_common_question_leading_to_no_flow() -> None:
    with pytest.raises(FlowError, match="demora"):
        _engine(*all_flows(), faq={"demora": "solicitudd", "gracias": ""})


def test_every_flow_the_application_offers_passes() -> None:
    _engine(*all_flows(), faq={"demora": FlowName.ACCESS_REQUEST})


# ------------------------------------------------------- read from the source
def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"``: a step named through a constant is checked too."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def _calls(tree: ast.Module) -> Iterator[tuple[str, ast.Call]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            yield name, node


def _text(node: ast.expr | None, constants: dict[str, str]) -> tuple[str, bool] | None:
    """A literal (or a constant's) text, and whether it is whole (False: an f-string's
    leading part, before the first placeholder)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, True
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id], True
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value, False
    return None


def _argument(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    return call.args[index] if len(call.args) > index else None


# Where a template key is written: (call, position, keyword).
KEY_SITES = {
    "Outbound": (0, "key"),
    "Again": (0, "key"),
    "question": (0, "key"),
    "ask": (0, "key"),
    "say": (0, "key"),
    "Choice": (1, "label"),
    "field_step": (1, "key"),
}


def _module_trees() -> Iterator[tuple[str, ast.Module]]:
    for path in MODULES:
        yield f"conversations.{path.stem}", ast.parse(path.read_text(), str(path))


def written_keys() -> Iterator[tuple[str, str, bool]]:
    """(module, key or its leading part, whole) for every template key in the flows."""
    for module, tree in _module_trees():
        constants = _constants(tree)
        for name, call in _calls(tree):
            sites = [KEY_SITES[name]] if name in KEY_SITES else []
            sites += [(99, "menu_label")] if name == "Flow" else []
            for index, keyword in sites:
                found = _text(_argument(call, index, keyword), constants)
                if found is not None and found[0]:
                    yield module, *found


def test_every_template_key_the_flows_write_is_in_the_locale() -> None:
    checked = list(written_keys())
    assert len(checked) > 200  # the walk sees the flows (guards against a vacuous test)
    missing = [
        f"{module}: {key}{'' if whole else '…'}"
        for module, key, whole in checked
        if (key not in KEYS if whole else not any(k.startswith(key) for k in KEYS))
    ]
    assert missing == []


def test_every_menu_label_is_in_the_locale() -> None:
    labels = [flow.menu_label for flow in all_flows() if flow.menu_label]
    assert [label for label in labels if label not in KEYS] == []


def _flow_steps_by_module() -> dict[str, set[str]]:
    """For each module, the steps of every flow that holds one of its step functions."""
    by_module: dict[str, set[str]] = {}
    for flow in all_flows():
        names = {step.name for step in flow.steps}
        for step in flow.steps:
            for function in (step.ask, step.answer):
                module = getattr(function, "__module__", None)
                if module:
                    by_module.setdefault(module, set()).update(names)
    return by_module


def named_targets() -> Iterator[tuple[str, str]]:
    """(module, step) for every ``Next("step")`` and ``go("step")`` in the flows."""
    for module, tree in _module_trees():
        constants = _constants(tree)
        for name, call in _calls(tree):
            if name in ("Next", "go"):
                found = _text(_argument(call, 0, "step"), constants)
                if found is not None:
                    yield module, found[0]


def test_every_step_a_flow_moves_to_by_name_exists() -> None:
    steps = _flow_steps_by_module()
    targets = list(named_targets())
    assert len(targets) > 40
    unknown = [f"{module}: {step}" for module, step in targets if step not in steps[module]]
    assert unknown == []


def test_a_typo_in_a_target_or_a_key_would_be_seen(tmp_path: Path) -> None:
    """The source walk reads what it claims to (guards against a vacuous harness)."""
    source = 'async def f(ctx):\n    return Next("resumenn", [Outbound("solicitud.nada")])\n'
    tree = ast.parse(source)
    calls = {name: call for name, call in _calls(tree)}
    assert _text(_argument(calls["Next"], 0, "step"), {}) == ("resumenn", True)
    assert _text(_argument(calls["Outbound"], 0, "key"), {}) == ("solicitud.nada", True)
    assert "resumenn" not in _flow_steps_by_module()["conversations.access_request"]
    assert "solicitud.nada" not in KEYS


def test_every_flow_name_has_its_flow_in_the_catalog() -> None:
    """A flow named in names.py but left out of catalog.all_flows() is unreachable."""
    assert sorted(flow.name for flow in all_flows()) == sorted(FlowName)
