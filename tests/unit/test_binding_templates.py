"""Binding templates expand purely: ids unique, static bindings win, departments nest."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.config import Tenant
from syncd.config.templates import expand, fill
from syncd.model import DirectoryUser, OrgDirectory

AES = "a" * 43


def _tenant(**extra: Any) -> Tenant:
    data: dict[str, Any] = {
        "id": "acme",
        "dingtalk": {"app_key": "k", "app_secret": "s", "delivery": "stream"},
        "directory": {"source": "dingtalk", "refresh": "1h"},
        **extra,
    }
    return Tenant.model_validate(data)


def _template(id_: str = "{user}-work", users: Any = "all") -> dict[str, Any]:
    url = "http://127.0.0.1:5232/{email}/work/"
    return {"id": id_, "users": users, "caldav": {"url": url, "create": True}}


def _user(n: int, *departments: int) -> DirectoryUser:
    return DirectoryUser(f"u-{n}", f"user{n}@acme.example", f"User {n}", f"s{n}", departments)


def test_directory_mapping_form_moves_to_directory_import() -> None:
    tenant = _tenant(
        directory={"source": "dingtalk", "extra": [{"union_id": "u-x", "email": "x@p.example"}]}
    )
    assert tenant.directory_import is not None
    assert tenant.directory_import.refresh == 3600
    assert tenant.directory_map() == {"u-x": "x@p.example"}


def test_static_binding_with_imported_directory_needs_no_static_entry() -> None:
    static = {"id": "u-1-work", "dingtalk_user": "u-1", "caldav": {"url": "http://h/x/"}}
    assert _tenant(bindings=[static]).bindings[0].dingtalk_user == "u-1"


def test_placeholders_expand_in_id_and_url() -> None:
    user = DirectoryUser("u-a", "a.b+c@acme.example")
    assert fill("{user}/{local}/{email}", user) == "u-a/a.b+c/a.b+c@acme.example"
    assert fill("http://h/{email}/", user, url=True) == "http://h/a.b%2Bc@acme.example/"


def test_department_selects_sub_departments() -> None:
    org = OrgDirectory(
        users=(_user(1, 10), _user(2, 11), _user(3, 20), _user(4)),
        parents=((10, 1), (11, 10), (20, 1)),
    )
    out = expand(_tenant(binding_templates=[_template(users={"department": 10})]), org)
    assert sorted(b.dingtalk_user for b in out.tenant.bindings) == ["u-1", "u-2"]
    assert out.from_template == {"u-1-work", "u-2-work"}
    assert str(out.tenant.bindings[0].caldav.url if out.tenant.bindings[0].caldav else "") == (
        "http://127.0.0.1:5232/user1@acme.example/work/"
    )


def test_template_concurrency_reaches_its_bindings() -> None:
    """A template's ``concurrency`` is every expanded binding's; absent, the default 4."""
    org = OrgDirectory(users=(_user(1), _user(2)))
    out = expand(_tenant(binding_templates=[{**_template(), "concurrency": 8}]), org)
    assert [b.concurrency for b in out.tenant.bindings] == [8, 8]
    plain = expand(_tenant(binding_templates=[_template()]), org)
    assert [b.concurrency for b in plain.tenant.bindings] == [4, 4]


def test_invalid_expansion_is_left_out_with_a_reason() -> None:
    org = OrgDirectory(users=(DirectoryUser("QQa9", "q@acme.example"), _user(1)))
    out = expand(_tenant(binding_templates=[_template()]), org)
    assert [b.id for b in out.tenant.bindings] == ["u-1-work"]
    assert len(out.problems) == 1
    assert "'QQa9'" in out.problems[0]


def test_extra_wins_over_the_import() -> None:
    org = OrgDirectory(users=(_user(1), DirectoryUser("u-2", "old@acme.example")))
    extra = [
        {"union_id": "u-2", "email": "new@acme.example"},
        {"union_id": "u-9", "email": "user1@acme.example"},
    ]
    out = expand(_tenant(directory={"source": "dingtalk", "extra": extra}), org)
    assert out.tenant.directory_map() == {"u-2": "new@acme.example", "u-9": "user1@acme.example"}


def test_leaving_user_loses_the_binding() -> None:
    tenant = _tenant(binding_templates=[_template()])
    before = expand(tenant, OrgDirectory(users=(_user(1), _user(2))))
    after = expand(tenant, OrgDirectory(users=(_user(1),)))
    assert {b.id for b in before.tenant.bindings} == {"u-1-work", "u-2-work"}
    assert {b.id for b in after.tenant.bindings} == {"u-1-work"}


users_st = st.lists(
    st.builds(
        _user,
        st.integers(0, 30),
        st.sampled_from([10, 11, 20, 30]),
    ),
    max_size=25,
    unique_by=lambda u: u.union_id,
)
templates_st = st.lists(
    st.tuples(
        st.sampled_from(["{user}-work", "{local}", "{user}", "fixed"]),
        st.one_of(
            st.just("all"),
            st.builds(lambda d: {"department": d}, st.sampled_from([1, 10, 20])),
            st.lists(st.sampled_from([f"u-{n}" for n in range(31)]), max_size=5),
        ),
    ),
    max_size=4,
)


@given(users_st, templates_st, st.sets(st.integers(0, 30), max_size=5))
def test_expansion_ids_unique_and_static_wins(
    users: list[DirectoryUser], templates: list[tuple[str, Any]], statics: set[int]
) -> None:
    """Every id appears once; a static binding's id is always the static binding."""
    static = [
        {"id": f"u-{n}-work", "dingtalk_user": "someone", "caldav": {"url": f"http://s/{n}/"}}
        for n in sorted(statics)
    ]
    tenant = _tenant(bindings=static, binding_templates=[_template(i, u) for i, u in templates])
    org = OrgDirectory(users=tuple(users), parents=((10, 1), (11, 10), (20, 1), (30, 1)))
    out = expand(tenant, org)
    ids = [b.id for b in out.tenant.bindings]
    assert len(ids) == len(set(ids))
    urls = [str(b.caldav.url) for b in out.tenant.bindings if b.caldav]
    assert len(urls) == len(set(urls))
    for binding in out.tenant.bindings:
        if binding.id in {s["id"] for s in static}:
            assert binding.dingtalk_user == "someone"
            assert binding.id not in out.from_template
        else:
            assert binding.id in out.from_template
            assert binding.dingtalk_user in {u.union_id for u in users}


@pytest.mark.parametrize("users", [{"department": 0}, "some"])
def test_bad_selector_is_a_config_error(users: Any) -> None:
    with pytest.raises(ValueError, match="users"):
        _tenant(binding_templates=[_template(users=users)])


async def test_config_reload_expands_over_the_last_import() -> None:
    """A reload (supervisor) serves the new file's templates over the directories the
    worker imported last, without waiting for the next refresh."""
    from dataclasses import replace
    from types import MappingProxyType, SimpleNamespace
    from typing import cast

    from arq.connections import ArqRedis
    from arq.worker import Worker

    from syncd.config import Config, Settings
    from syncd.worker.context import CTX_KEY, WorkerContext, worker_context
    from syncd.worker.supervisor import _swap_config

    org = OrgDirectory(users=(_user(1, 10), _user(2, 20)), parents=((10, 1), (20, 1)))
    tenant = _tenant(binding_templates=[_template(users={"department": 20})])
    new = Config(Settings(), {"acme": tenant})
    unused = ArqRedis(port=1)  # never connected: the swap reads no Redis
    shared = WorkerContext.open(Config(Settings(), {}), unused)
    try:
        holder = SimpleNamespace(
            ctx={CTX_KEY: replace(shared, directories=MappingProxyType({"acme": org}))}
        )
        _swap_config(cast(Worker, holder), new)
        served = worker_context(holder.ctx)
        assert served.base_config is new
        assert [b.id for _, b in served.config.bindings()] == ["u-2-work"]
    finally:
        await shared.close()
        await unused.aclose()


def test_syncd_directory_with_a_static_directory(tmp_path: Any) -> None:
    """``syncd directory`` needs no Redis for a static directory; templates expand over it."""
    import json

    from click.testing import CliRunner

    from syncd.cli import main
    from syncd_lab.stack import config as lab_config

    acme = {
        "id": "acme",
        "dingtalk": {"app_key": "k", "app_secret": "s", "delivery": "stream"},
        "directory": [{"union_id": "u-a", "email": "a@acme.example"}],
        "bindings": [{"id": "a-home", "dingtalk_user": "u-a", "caldav": {"url": "http://h/1/"}}],
        "binding_templates": [_template("{local}-work")],
    }
    root = lab_config.write_config_dir(tmp_path, {}, [acme])
    result = CliRunner().invoke(main, ["directory", "acme", "--json", "--config", str(root)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "users": [{"union_id": "u-a", "email": "a@acme.example", "name": "", "departments": []}],
        "bindings": [
            {
                "id": "a-home",
                "dingtalk_user": "u-a",
                "caldav_url": "http://h/1/",
                "from_template": False,
            },
            {
                "id": "a-work",
                "dingtalk_user": "u-a",
                "caldav_url": "http://127.0.0.1:5232/a@acme.example/work/",
                "from_template": True,
            },
        ],
    }
    missing = CliRunner().invoke(main, ["directory", "nope", "--config", str(root)])
    assert missing.exit_code == 2
