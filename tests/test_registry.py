"""The one Registry type and the registries built on it."""
import pytest

from rlnas.agents import AGENTS
from rlnas.datasets import DATASETS, load_dataset
from rlnas.errors import ConfigError
from rlnas.evaluators import EVALUATORS, create_evaluator
from rlnas.registry import Registry, accepted_options
from rlnas.spaces import SPACES, create_space


def make(width: int, *, depth: int = 2, act: str = "relu") -> tuple[int, int, str]:
    return width, depth, act


def test_lazy_paths_objects_and_clear_errors():
    reg = Registry("widget", {"lazy": "collections:OrderedDict", "direct": make})
    assert reg.list() == ["direct", "lazy"] and "lazy" in reg and len(reg) == 2
    assert reg.create("direct", 3, depth=4) == (3, 4, "relu")
    assert reg.get("lazy").__name__ == "OrderedDict"
    with pytest.raises(ConfigError, match=r"unknown widget 'nope' \(choices: direct, lazy\)"):
        reg.get("nope")
    with pytest.raises(ConfigError, match=r"widget 'direct': unknown option\(s\) colour \(accepted: depth, act\)"):
        reg.create("direct", 3, colour="red")
    with pytest.raises(ConfigError, match="module:attr"):
        reg.register("bad", "no_colon")
    reg.register("mine", "builtins:dict")
    assert reg.create("mine", a=1) == {"a": 1}  # **kwargs callables accept anything
    reg.register("mine", "collections:OrderedDict")  # a name registered later may be registered again
    assert reg.get("mine").__name__ == "OrderedDict"
    reg.unregister("mine")
    assert "mine" not in reg
    reg.register("typo", "no_such_module:Thing")  # a path is imported on first use: a plugin's typo shows then
    with pytest.raises(ConfigError, match=r"widget 'typo' is registered as 'no_such_module:Thing', which cannot be "
                                          r"imported: ModuleNotFoundError"):
        reg.get("typo")
    reg.register("typo", "collections:NoSuchThing")
    with pytest.raises(ConfigError, match="which cannot be imported: AttributeError"):
        reg.get("typo")


@pytest.mark.parametrize("registry, name", [(AGENTS, "random"), (SPACES, "nb201"), (EVALUATORS, "nb201")])
def test_a_built_in_name_cannot_be_replaced_or_removed(registry, name):
    # a plugin's "random" agent would go on with the stored studies of the built-in one
    before = registry.get(name)
    with pytest.raises(ConfigError, match=f"^{registry.kind} '{name}' is built into rlnas and cannot be replaced; "
                                          "register yours under another name$"):
        registry.register(name, "builtins:dict")
    with pytest.raises(ConfigError, match="cannot be removed"):
        registry.unregister(name)
    assert registry.get(name) is before
    reg = Registry("widget", {"lazy": "collections:OrderedDict"})
    with pytest.raises(ConfigError, match="built into rlnas"):
        reg.register("lazy", "builtins:dict")


def test_a_factory_that_makes_no_space_or_evaluator_is_named(monkeypatch):
    monkeypatch.setitem(SPACES._entries, "made_none", lambda: None)  # gone after the test: others list the spaces
    monkeypatch.setitem(EVALUATORS._entries, "made_five", lambda: 5)
    with pytest.raises(ConfigError, match="space 'made_none': its registered factory returned NoneType None, not a "
                                          "Space"):
        create_space("made_none")  # failed later with AttributeError: 'NoneType' object has no attribute 'name'
    with pytest.raises(ConfigError, match="evaluator 'made_five': its registered factory returned int 5, which has "
                                          "no evaluate method"):
        create_evaluator("made_five")  # returned 5


def test_accepted_options_skips_positional_arguments_given():
    assert accepted_options(make, skip=1) == ["depth", "act"]
    assert accepted_options(make) == ["width", "depth", "act"]


def test_every_registry_is_lazy_and_names_its_choices():
    for registry in (SPACES, AGENTS, EVALUATORS, DATASETS):
        assert isinstance(registry, Registry) and registry.list()
    with pytest.raises(ConfigError, match="unknown space 'nb2001'"):
        create_space("nb2001")
    with pytest.raises(ConfigError, match=r"evaluator 'nb201': unknown option\(s\) epochs"):
        create_evaluator("nb201", epochs=3)
    with pytest.raises(ConfigError, match=r"dataset 'digits': unknown option\(s\) size"):
        load_dataset("digits", size=3)
    with pytest.raises(ConfigError, match="space must be a registered name"):
        create_space(123)


def test_installed_plugins_are_read_on_the_first_miss_only(tmp_path, monkeypatch):
    import importlib.metadata
    import sys

    import rlnas.plugins as plugins
    from rlnas.agents import AGENTS

    source = ("from rlnas.agents import register_agent\n"
              "register_agent('from_a_package', 'rlnas.agents.random:RandomAgent')\n")
    (tmp_path / "installed_plugin.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = importlib.metadata.EntryPoint("mine", "installed_plugin", plugins.ENTRY_POINT_GROUP)
    scans = []
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: scans.append(group) or ([point] if group == plugins.ENTRY_POINT_GROUP else []))
    monkeypatch.setattr(plugins, "_scanned", False)
    try:
        assert "random" in AGENTS and scans == []  # found without reading the installed packages
        assert AGENTS.get("from_a_package").__name__ == "RandomAgent" and scans == [plugins.ENTRY_POINT_GROUP]
        assert "nope" not in AGENTS and len(scans) == 1  # read once per process
    finally:
        AGENTS.unregister("from_a_package")
        sys.modules.pop("installed_plugin", None)


def test_a_target_that_cannot_be_called_is_refused_with_one_line():
    registry = Registry("evaluator")
    with pytest.raises(ConfigError, match=r"evaluator 'e5': expected a class, a function or a 'module:attr' path, "
                                          r"got int 5"):
        registry.register("e5", 5)
    assert "e5" not in registry.list()
    registry.register("pi", "math:pi")  # a path is imported on use: what it names is checked then
    with pytest.raises(ConfigError, match=r"evaluator 'pi' is registered as 'math:pi', which is float 3\.14.*, not a "
                                          r"class or a function"):
        registry.create("pi")
    with pytest.raises(ConfigError, match="^an agent name must be a non-empty string"):
        Registry("agent").register("", "x:y")
