"""Costs of the embedded cloud that AWS does not have, taken out without changing what moto does.

- moto's server finds the service of every request by listing its own package directory on disk
  (`moto.backends.list_of_moto_modules`, an `os.listdir` and an `isdir` per entry), about a
  sixth of the server's time under load: the list is read once.
- moto's ASL interpreter parses the state machine's definition again for every execution (the
  ANTLR parse is tens of milliseconds, the webhook → agent path runs two executions): the parse
  tree is kept per definition, and each execution still builds its own evaluation components
  from it (the tree is only read; the components hold the execution's state). Building them
  asks the tree for the text of its nodes over and over (ANTLR joins a node's text from its
  children at each call: about a third of the embedded cloud's CPU in a 200-application sync):
  each node's text is worked out once per tree and read from there while a program is built.
  Even so a program took about 5 ms to build, once per execution (2.5 s of a 500-application
  sync, one deploy execution each). A program holds no execution's state: the execution's
  Environment does (moto's own Map runs its iterations side by side through one program),
  except a Parallel state's branches, which count their running workers on the component, and
  the key each component takes for its retry counters in the Environment, drawn on first use.
  So one program is built per definition and shared by its executions, its components' keys
  drawn before it is shared; a definition with a Parallel state gets a program per execution.
- moto writes every answer through botocore's shapes, and a DynamoDB item's attribute values
  are structures of ten members, each looked up through a picker that builds its context per
  member: a 500-application Query spent most of its time there, the sync's writes that return
  their rows too. An attribute value is written straight to its wire form instead (the same
  JSON, member by member in the shape's order, blobs in base64).
- moto checks an UpdateItem's expression with ten tree walks, and two of them (one SET, REMOVE
  and ADD clause at most; no two actions on one path) run their check again at each of the
  expression's nested nodes, each check walking the node's whole subtree: quadratic in the
  actions (a 16-action write spent about 10 ms there). A subtree's clauses and paths are some of
  the whole expression's, so a check that passes at the root passes everywhere: it runs there
  once, and only an expression that fails it is walked moto's way, for moto's own error. Each
  walk also rebuilt its table of node handlers at every node: it is built once per walk. The
  expression is parsed twice per call (moto's handler and its backend): the parse of each
  expression text is kept (the checks work on their own copy of it). That copy was a
  `copy.deepcopy` of the tree, slower than parsing it again: a tree of plain nodes (a type, a
  parent, children that are nodes or strings) is copied node by node instead.
- moto's SQS SendMessage reads the queue's attributes for one of them (content-based
  deduplication), and building them counts the queue's visible, delayed and in-flight messages,
  each message asking the clock: every send cost as much as the queue was long (the sync-jobs
  queue of a burst, an agent's queue of 500 deploys). While a message is sent, a queue's
  attributes are that one, as moto would have computed it.
- The embedded cloud is one process holding all of AWS's state and every function's modules:
  close to 900,000 objects once started, nearly all of them kept until it stops. Python's full
  collections walk every one (about 0.65 s each, three of them in a 500-application sync, and
  the younger generations' collections grow with them): what exists once the cloud has started
  is set aside (`gc.freeze`), so collections walk only what came after, and they run less
  often (a young generation of 20,000 objects instead of 700; a full collection after 100
  middle ones instead of 10): in a 500-application sync the collector's time fell from about
  3 s (three full collections of 0.65 s) to about 1.3 s.
- moto's ASL interpreter parses every JSONPath (`$.job`, `$.plan.batches`, ...) again at each
  state, and jsonpath_ng builds its whole parser for each parse: the parse of each path text is
  kept (a parsed path is only read: `find` and `update_or_create` change the data, not it).
- moto's handlers list every function of their class (`inspect.getmembers` over a class of
  hundreds of attributes) at every request, to see whether the request's action is one of them:
  the list is made once per class (a class's functions are fixed once it is defined).
- Every call is checked against its caller's role (IAM access control is on): moto looked the
  IAM backend up again for each of the role's policies, parsed each policy's JSON, and matched
  every statement against the action and the resource, at every call: about a fifth of the
  process's CPU while the API took webhooks (yappi). The backend is looked up once per call,
  a document's parse is kept, and a policy's answer for an action on a resource is kept per
  document. A policy that changes is a new document, so it is checked anew. Checks that depend
  on more (a principal, condition values: role trust policies) still run moto's way.
- moto's walks of an UpdateItem's expression (eight per call, over a hundred nodes each for a
  sync's status write) asked at every node whether it is a node and which handler takes it,
  through `isinstance` on abstract classes, and called a pre-processing hook that all but one
  walk leave empty: the handler is found once per node class and walk, and the empty hook is
  not called. The walk is otherwise moto's, node for node (a fifth of the CPU of a
  100-application sync).
- moto's ASL interpreter copies an execution's data at every state (`copy.deepcopy` of JSON:
  a state's input and result, each path's value): plain dicts and lists are copied by a walk of
  their own, with deepcopy's memo (a dict met twice is copied once), and anything else by
  deepcopy itself.
- moto parses an UpdateItem's condition twice per call (its handler checks the names and
  values it uses, its backend evaluates it), and its lexer compiles its six patterns again for
  every token: the tokens of each condition text are kept (each parse gets copies; the parse
  itself, with the call's names and values, is moto's).
- moto checks an item's 400 KB at every attribute an update sets, by asking every attribute's
  size, and a map's size built a new DynamoType for each of its values (and, inside those, for
  every element of their lists) only to ask theirs: a size is now worked out from the values
  as they are, with the same result.
- That check sums the size of every attribute of the item at each attribute an update sets
  (quadratic: about an eighth of a 100-application push). Within one update expression, the
  item's size after a top-level SET is at most the sum moto just checked plus what it set, so
  that bound is carried to the next SET, and the whole sum is worked out again only when the
  bound would cross moto's limit, or after an action that changes the item beneath its top
  level (a nested path, ADD, DELETE), which the bound does not see. moto refuses exactly what
  it refused (the bound is never below the sum), at the same attribute. An item being built
  (every PutItem, each item of a batch) starts empty, so there the bound is its exact size.
- Three of those walks (one SET, REMOVE and ADD clause at most; no two actions on one path; no
  key attribute updated) depend only on the expression, its attribute names and the table's
  keys, and change nothing: once an expression passed them with those names on that table, it
  passes again, and they are skipped (a sync batch writes each application with the same
  expression). The walks that read the item or the values still run at every call.
- moto finds a service's backend for an account through a check, at every call, that the
  account's backend exists and that the whole dictionary is listed among those a reset clears,
  by comparing it with every listed one (a tenth of a millisecond a call, under a lock). Once
  the account is there, both hold until a reset clears them together: that is checked first.
- moto draws each request id one character at a time (52 calls into its random generator);
  it draws them in one call now, from the same generator and alphabet.

moto is pinned exactly; tests/integration/test_local_cloud.py checks each replacement.
"""

from __future__ import annotations

import base64
import copy
import functools
import gc
import importlib
import json
import string
import threading
import types
from collections import deque
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from moto import backends
from moto.core.serialize import BaseJSONSerializer
from moto.stepfunctions.parser.asl.component.component import Component
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

# moto's DynamoDB expression modules carry no types.
_ast: Any = importlib.import_module("moto.dynamodb.parsing.ast_nodes")
_expressions: Any = importlib.import_module("moto.dynamodb.parsing.expressions")
_validators: Any = importlib.import_module("moto.dynamodb.parsing.validators")
_comparisons: Any = importlib.import_module("moto.dynamodb.comparisons")
_executors: Any = importlib.import_module("moto.dynamodb.parsing.executors")
_base_backend: Any = importlib.import_module("moto.core.base_backend")
_moto_random: Any = importlib.import_module("moto.moto_api._internal.moto_random")
_dynamo_type: Any = importlib.import_module("moto.dynamodb.models.dynamo_type")
_utilities: Any = importlib.import_module("moto.dynamodb.models.utilities")
_sqs: Any = importlib.import_module("moto.sqs.models")
_access_control: Any = importlib.import_module("moto.iam.access_control")
_responses: Any = importlib.import_module("moto.core.responses")
# ANTLR's runtime carries no types either.
ParserRuleContext: Any = importlib.import_module("antlr4.ParserRuleContext").ParserRuleContext
RuleContext: Any = importlib.import_module("antlr4.RuleContext").RuleContext
_json_path_users: tuple[Any, ...] = tuple(
    importlib.import_module(f"moto.stepfunctions.parser.asl.{name}")
    for name in ("utils.json_path", "component.common.path.result_path")
)

# The ASL interpreter's modules that copy an execution's data at every state (`copy.deepcopy`
# of JSON: the state's input, its result, each path's value, the frames a Map iteration gets).
_DATA_COPIERS: tuple[Any, ...] = tuple(
    importlib.import_module(f"moto.stepfunctions.parser.asl.{name}")
    for name in (
        "eval.states",
        "eval.environment",
        "component.common.string.string_expression",
        "component.common.path.result_path",
        "component.state.exec.execute_state",
        "component.state.exec.state_map.state_map",
        "component.state.exec.state_task.service.state_task_service",
        "component.state.exec.state_parallel.state_parallel",
    )
)

_MARKER = "_ferry_cached"
_DEFINITIONS_KEPT = 32
# DynamoDB's AttributeValue members in the shape's order (moto writes them in that order).
_STRINGS, _BLOBS = ("S", "N"), ("B",)
_STRING_SETS, _BLOB_SETS = ("SS", "NS"), ("BS",)
_ATTRIBUTE_VALUE_MEMBERS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
_EXPRESSIONS_KEPT = 256
# Python's defaults are (700, 10, 10).
_COLLECTION_THRESHOLDS = (20_000, 20, 100)
_JSON_PATHS_KEPT = 512
# (policy document, action, resource) decisions: a few dozen roles' policies, each checked for
# the handful of actions and resources its function uses.
_PERMISSIONS_KEPT = 8192
# moto's own structure writer, kept for every other structure (and for tests to compare with).
moto_serialize_structure = BaseJSONSerializer._serialize_type_structure
moto_traverse = _ast.DepthFirstTraverser.traverse
moto_traverse_node_recursively = _ast.DepthFirstTraverser.traverse_node_recursively
moto_lex_condition_expression = _comparisons.ConditionExpressionParser._lex_condition_expression
moto_dynamo_size = _dynamo_type.DynamoType.size
_no_pre_processing = _ast.DepthFirstTraverser.pre_processing_of_child


def install() -> None:
    """Install every replacement above, once per process (idempotent)."""
    if not getattr(backends.list_of_moto_modules, _MARKER, False):
        modules = tuple(backends.list_of_moto_modules())

        def list_of_moto_modules() -> Iterable[str]:
            return modules

        setattr(list_of_moto_modules, _MARKER, True)
        backends.list_of_moto_modules = list_of_moto_modules
    parser = asl_parser.AmazonStateLanguageParser
    if not getattr(parser.parse, _MARKER, False):
        parse_tree = functools.lru_cache(maxsize=_DEFINITIONS_KEPT)(_parse_tree(parser.parse))

        def build(definition: str) -> EvalComponent:
            tree, texts = parse_tree(definition)
            _building.texts = texts
            try:
                return Preprocessor().visit(tree)  # type: ignore[no-any-return]
            finally:
                _building.texts = None

        @functools.lru_cache(maxsize=_DEFINITIONS_KEPT)
        def shared_program(definition: str) -> EvalComponent:
            return _with_keys_drawn(build(definition))

        def parse(definition: str) -> tuple[EvalComponent, Any]:
            tree = parse_tree(definition)[0]
            if _has_parallel_state(definition):
                return build(definition), tree
            return shared_program(definition), tree

        setattr(parse, _MARKER, True)
        parser.parse = staticmethod(parse)  # type: ignore[method-assign]
        RuleContext.getText = _kept_text
    if not getattr(BaseJSONSerializer._serialize_type_structure, _MARKER, False):
        setattr(_serialize_type_structure, _MARKER, True)
        BaseJSONSerializer._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]
    _install_update_expression_checks()
    _install_condition_lexing()
    if not getattr(_dynamo_type.DynamoType.size, _MARKER, False):
        setattr(_dynamo_size, _MARKER, True)
        _dynamo_type.DynamoType.size = _dynamo_size
    _install_item_size_bound()
    _install_sqs_send()
    _install_permission_checks()
    _install_backend_lookup()
    _install_request_ids()
    if not getattr(_responses.method_names_from_class, _MARKER, False):
        names_of_class = functools.lru_cache(maxsize=None)(_responses.method_names_from_class)
        setattr(names_of_class, _MARKER, True)
        _responses.method_names_from_class = names_of_class
    for module in _DATA_COPIERS:
        if module.copy is copy:
            module.copy = _json_copying
    for module in _json_path_users:
        if not getattr(module.parse, _MARKER, False):
            parse_path: Any = functools.lru_cache(maxsize=_JSON_PATHS_KEPT)(module.parse)
            setattr(parse_path, _MARKER, True)
            module.parse = parse_path


_ATOMS = frozenset({str, int, float, bool, type(None)})


def json_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """`copy.deepcopy`, walking plain dicts and lists itself: the same copy (a dict or list met
    twice is copied once, as `deepcopy`'s memo does), in a fraction of the time; anything else
    is copied by `deepcopy` itself, with the same memo."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if memo is None:
        memo = {}
    if kind is dict:
        done = memo.get(id(value))
        if done is not None:
            return done
        twin: dict[Any, Any] = {}
        memo[id(value)] = twin
        for key, item in value.items():
            if type(key) not in _ATOMS:
                key = json_deepcopy(key, memo)
            twin[key] = item if type(item) in _ATOMS else json_deepcopy(item, memo)
        return twin
    if kind is list:
        done = memo.get(id(value))
        if done is not None:
            return done
        listed: list[Any] = []
        memo[id(value)] = listed
        for item in value:
            listed.append(item if type(item) in _ATOMS else json_deepcopy(item, memo))
        return listed
    return copy.deepcopy(value, memo)


# What the interpreter's modules see as `copy`: the module, but for its deepcopy.
_json_copying = types.ModuleType("copy")
_json_copying.__dict__.update(
    {name: getattr(copy, name) for name in dir(copy) if not name.startswith("__")}
)
setattr(_json_copying, "deepcopy", json_deepcopy)  # noqa: B010


def settle_heap() -> None:
    """Set aside what the started cloud holds from the garbage collector's walks (after a
    collection, so that nothing unreachable is kept)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_COLLECTION_THRESHOLDS)


# -- IAM: each call's permission check -------------------------------------------------------


def moto_policy_document(policy: Any) -> str:
    """The document moto's IAMPolicy reads from `policy` (a managed policy's default version, a
    document, or an inline policy's record)."""
    if isinstance(policy, _access_control.Policy):
        return next(v for v in policy.versions if v.is_default).document  # type: ignore[no-any-return]
    if isinstance(policy, str):
        return policy
    return policy["policy_document"]  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=_PERMISSIONS_KEPT)
def _parsed_policy(document: str) -> Any:
    # Shared by every IAMPolicy of this document: moto's statements only read it.
    return json.loads(document)


@functools.lru_cache(maxsize=_PERMISSIONS_KEPT)
def _permission(document: str, action: str, resource: str) -> Any:
    policy = object.__new__(_access_control.IAMPolicy)
    policy._policy_json = _parsed_policy(document)
    return moto_is_action_permitted(policy, action, resource)


moto_is_action_permitted = _access_control.IAMPolicy.is_action_permitted
moto_collect_role_policies = _access_control.AssumedRoleAccessKey.collect_policies


def _install_permission_checks() -> None:
    policy_class = _access_control.IAMPolicy
    role_key = _access_control.AssumedRoleAccessKey
    if getattr(policy_class.is_action_permitted, _MARKER, False):
        return

    def policy_init(self: Any, policy: Any) -> None:
        self._ferry_document = moto_policy_document(policy)
        self._policy_json = _parsed_policy(self._ferry_document)

    def is_action_permitted(
        self: Any,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> Any:
        if principal is None and incoming_condition_values is None:
            # A function of the document, the action and the resource alone.
            return _permission(self._ferry_document, action, resource)
        return moto_is_action_permitted(
            self, action, resource, principal, incoming_condition_values
        )

    def collect_policies(self: Any) -> list[Any]:
        # moto's, with the IAM backend looked up once instead of once per policy.
        backend, role = self.backend, self._owner_role_name
        policies = [
            backend.get_role_policy(role, name)[1] for name in backend.list_role_policies(role)
        ]
        attached, _ = backend.list_attached_role_policies(role)
        return policies + list(attached)

    setattr(is_action_permitted, _MARKER, True)
    policy_class.__init__ = policy_init
    policy_class.is_action_permitted = is_action_permitted
    role_key.collect_policies = collect_policies


_sending = threading.local()


def _install_sqs_send() -> None:
    backend, queue = _sqs.SQSBackend, _sqs.Queue
    if getattr(backend.send_message, _MARKER, False):
        return
    send, attributes = backend.send_message, queue.attributes

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sending.active = True
        try:
            return send(self, *args, **kwargs)
        finally:
            _sending.active = False

    def queue_attributes(self: Any) -> dict[str, Any]:
        if not getattr(_sending, "active", False):
            return attributes.fget(self)  # type: ignore[no-any-return]
        if not self.fifo_queue:
            return {}
        deduplication = self.content_based_deduplication
        if isinstance(deduplication, bool):  # as moto's attributes write booleans
            deduplication = str(deduplication).lower()
        return {"ContentBasedDeduplication": deduplication}

    setattr(send_message, _MARKER, True)
    backend.send_message = send_message
    queue.attributes = property(queue_attributes)


def _install_update_expression_checks() -> None:
    traverser = _ast.DepthFirstTraverser
    if getattr(traverser.traverse_node_recursively, _MARKER, False):
        return
    for function in (_walk, _checked_at_the_root, _copied):
        setattr(function, _MARKER, True)
    traverser.traverse_node_recursively = _walk
    _validators.ActionCountValidator.traverse = _checked_at_the_root
    _validators.OverlappingPathsValidator.traverse = _checked_at_the_root
    _validators.deepcopy = _copied
    parser = _expressions.UpdateExpressionParser
    parse: Any = functools.lru_cache(maxsize=_EXPRESSIONS_KEPT)(parser.make.__func__)
    parser.make = classmethod(parse)
    _install_structure_checks_once()


# Validators of an update expression that read nothing but the expression, its attribute names
# and the table's keys, and return the tree unchanged (moto runs them first).
_STRUCTURE_CHECKS = (
    _validators.ActionCountValidator,
    _validators.OverlappingPathsValidator,
    _validators.UpdateHashRangeKeyValidator,
)
# (id of moto's parse of an expression, its names, the table's keys) → that parse, once the
# structure checks passed (holding the parse keeps its id from being reused).
_structure_passed: dict[tuple[int, tuple[tuple[str, str], ...], tuple[str, ...]], Any] = {}


def _install_structure_checks_once() -> None:
    validator = _validators.UpdateExpressionValidator
    moto_init = validator.__init__

    def init(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        moto_init(self, expression, *args, **kwargs)
        self._ferry_parse = expression

    def validate(self: Any) -> Any:
        parse = self._ferry_parse
        names = tuple(sorted((self.expression_attribute_names or {}).items()))
        key = (id(parse), names, tuple(self.table.table_key_attrs))
        passed = _structure_passed.get(key) is parse
        node = self.node_to_validate
        for processor in self.processors:
            if isinstance(processor, _STRUCTURE_CHECKS):
                if passed:
                    continue
            elif not passed:
                if len(_structure_passed) >= _EXPRESSIONS_KEPT:
                    _structure_passed.clear()
                _structure_passed[key] = parse
                passed = True
            node = processor.traverse(node)
        return node

    validator.__init__ = init
    validator.validate = validate


_SETS = frozenset({"SS", "NS", "BS"})


def _dynamo_size(self: Any) -> int:
    # moto's DynamoType.size, without building a DynamoType for every value of every map (and,
    # inside it, again for every element of its lists) only to ask its size.
    return _size_of(self.type, self.value, False)


def _size_of(kind: str, value: Any, rewrapped: bool) -> int:
    # `rewrapped`: moto reaches these values through DynamoType(value) (a map's values, and the
    # elements of lists inside them), which would read a raw {"S": ...} dict; elsewhere it asks
    # the value's own size().
    if kind == "N":
        return len(str(value))
    if kind in _SETS:
        return sum(_size_of(kind[0], member, False) for member in value)
    if kind == "L":
        return sum(_element_size(element, rewrapped) for element in value)
    if kind == "M":
        return sum(
            _utilities.bytesize(name) + _element_size(member, True)
            for name, member in value.items()
        )
    if isinstance(value, bool):
        return 1
    return _utilities.bytesize(value)  # type: ignore[no-any-return]


def _element_size(element: Any, rewrapped: bool) -> int:
    if type(element) is _dynamo_type.DynamoType:
        return _size_of(element.type, element.value, rewrapped)
    if rewrapped:
        return moto_dynamo_size(_dynamo_type.DynamoType(element))  # type: ignore[no-any-return]
    return element.size()  # type: ignore[no-any-return]


# moto's limit on an item's size, as LimitedSizeDict checks it.
ITEM_SIZE_LIMIT = 405000
moto_limited_setitem = _dynamo_type.LimitedSizeDict.__setitem__
_dynamodb_exceptions: Any = importlib.import_module("moto.dynamodb.exceptions")


class _SizeBound(threading.local):
    attrs: Any = None  # the item's attributes one update expression is changing, in this thread
    bound: int | None = None  # at least their size (None: unknown)


_size_bound = _SizeBound()


def _attribute_size(value: Any) -> int:
    if type(value) is _dynamo_type.DynamoType:
        return _dynamo_size(value)
    return _utilities.bytesize(str(value))  # type: ignore[no-any-return]


def _limited_setitem(self: Any, key: str, value: Any) -> None:
    state = _size_bound
    added = _utilities.bytesize(key) + _attribute_size(value)
    if state.attrs is self and state.bound is not None and state.bound + added <= ITEM_SIZE_LIMIT:
        # moto's sum is at most the bound: its check passes.
        dict.__setitem__(self, key, value)
        state.bound += added
        return
    # moto's own check: the size of every attribute as it is, and of the one set.
    current = sum(_attribute_size(name) + _attribute_size(self[name]) for name in self)
    if current + added > ITEM_SIZE_LIMIT:
        raise _dynamodb_exceptions.ItemSizeTooLarge
    dict.__setitem__(self, key, value)
    if state.attrs is self:
        state.bound = current + added


def _install_item_size_bound() -> None:
    limited = _dynamo_type.LimitedSizeDict
    if getattr(limited.__setitem__, _MARKER, False):
        return
    setattr(_limited_setitem, _MARKER, True)
    limited.__setitem__ = _limited_setitem
    item_class = _dynamo_type.Item

    def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        # moto's Item.__init__, its attributes set one by one into a new dict (whose size is
        # known all along: nothing else reaches it meanwhile).
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = limited()
        state = _size_bound
        outer = (state.attrs, state.bound)
        state.attrs, state.bound = self.attrs, 0
        try:
            for key, value in attrs.items():
                self.attrs[key] = _dynamo_type.DynamoType(value)
        finally:
            state.attrs, state.bound = outer

    item_class.__init__ = item_init
    expression_executor = _executors.UpdateExpressionExecutor
    moto_execute = expression_executor.execute

    def execute(self: Any, node: Any = None) -> None:
        if node is not None:
            moto_execute(self, node)
            return
        state = _size_bound
        outer = (state.attrs, state.bound)
        state.attrs, state.bound = self.item.attrs, None
        try:
            moto_execute(self, node)
        finally:
            state.attrs, state.bound = outer

    expression_executor.execute = execute
    # A REMOVE only makes the item smaller: the bound holds.
    for name in ("SetExecutor", "AddExecutor", "DeleteExecutor"):
        executor = getattr(_executors, name)
        executor.execute = _unbounding(executor.execute, top_level_set=name == "SetExecutor")


def _unbounding(moto_action: Any, *, top_level_set: bool) -> Any:
    """An action's execution that forgets the size bound when it may grow the item other than
    through a top-level SET (which the bound follows)."""

    def execute(self: Any, item: Any) -> None:
        try:
            moto_action(self, item)
        finally:
            if not (top_level_set and len(self.get_path_expression_nodes()) == 1):
                _size_bound.bound = None

    return execute


def _install_backend_lookup() -> None:
    backend_dict = _base_backend.BackendDict
    moto_create = backend_dict._create_account_specific_backend
    if getattr(moto_create, _MARKER, False):
        return

    def create_account_specific_backend(self: Any, account_id: str) -> None:
        # Present: moto created it and listed this dictionary, and only a reset undoes both.
        if not dict.__contains__(self, account_id):
            moto_create(self, account_id)

    setattr(create_account_specific_backend, _MARKER, True)
    backend_dict._create_account_specific_backend = create_account_specific_backend


def _install_request_ids() -> None:

    def get_random_string(
        self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False
    ) -> str:
        pool = string.ascii_letters + (string.digits if include_digits else "")
        drawn = "".join(self.choices(pool, k=length))
        return drawn.lower() if lower_case else drawn

    _moto_random.MotoRandom.get_random_string = get_random_string


def _install_condition_lexing() -> None:
    parser = _comparisons.ConditionExpressionParser
    if getattr(parser._lex_condition_expression, _MARKER, False):
        return
    moto_lex = moto_lex_condition_expression

    @functools.lru_cache(maxsize=_EXPRESSIONS_KEPT)
    def tokens_of(text: str) -> tuple[Any, ...]:
        lexer = object.__new__(parser)
        lexer.condition_expression = text
        return tuple(moto_lex(lexer))

    def lex(self: Any) -> Any:
        # Each parse consumes its tokens and never changes one (they are named tuples whose
        # children lists are empty): each gets a deque of its own, with lists of its own.
        return deque(token._replace(children=[]) for token in tokens_of(self.condition_expression))

    setattr(lex, _MARKER, True)
    parser._lex_condition_expression = lex


def _handlers(traverser: Any) -> dict[type, Any]:
    # A walk's handlers are bound methods of its own: the same at every node.
    handlers = traverser.__dict__.get("_ferry_handlers")
    if handlers is None:
        handlers = traverser.__dict__["_ferry_handlers"] = traverser._processing_map()
    return handlers  # type: ignore[no-any-return]


def _process(self: Any, node: Any) -> Any:
    # moto's DepthFirstTraverser.process, with the walk's handler table built once.
    for node_class, handler in _handlers(self).items():
        if isinstance(node, node_class):
            return handler(node)
    return None


_UNKNOWN = object()
# Whether a class is one of moto's expression nodes (an ABC: `isinstance` asks its metaclass).
_node_classes: dict[type, bool] = {}


def _walk(self: Any, node: Any, child_id: int = -1) -> Any:
    # moto's DepthFirstTraverser.traverse_node_recursively, node for node: a node's children
    # first, each after the pre-processing hook, then the node's handler (the first of the walk's
    # handlers whose class it is), which may replace it in its parent. The handler is found once
    # per node class and walk, and the hook is called only where a walk has one.
    handler_of = self.__dict__.get("_ferry_handler_of")
    if handler_of is None:
        handler_of = self.__dict__["_ferry_handler_of"] = {}
    hooked = type(self).pre_processing_of_child is not _no_pre_processing
    return _visit(
        self, node, child_id, handler_of, self.pre_processing_of_child if hooked else None
    )


def _visit(
    traverser: Any,
    node: Any,
    child_id: int,
    handler_of: dict[type, Any],
    hook: Any,
) -> Any:
    kind = type(node)
    is_node = _node_classes.get(kind)
    if is_node is None:
        is_node = _node_classes[kind] = issubclass(kind, _ast.Node)
    if not is_node:
        return node
    parent = node.parent
    if node.children is not None:
        for i, child in enumerate(node.children):
            if hook is not None:
                hook(node, i)
            _visit(traverser, child, i, handler_of, hook)
    handler = handler_of.get(kind, _UNKNOWN)
    if handler is _UNKNOWN:
        handler = handler_of[kind] = next(
            (h for cls, h in _handlers(traverser).items() if issubclass(kind, cls)), None
        )
    if handler is not None:
        node = handler(node)
        node.parent = parent
        if parent:
            parent.children[child_id] = node
    return node


_PLAIN_NODE = frozenset({"type", "children", "parent"})
_PLAIN_LEAVES = (str, int, float, bool, type(None))


class _NotPlain(Exception):
    pass


def _copied(value: Any) -> Any:
    # The validators' copy of an expression tree (and of a list value for list_append).
    if isinstance(value, _ast.Node) and value.parent is None:
        try:
            return _tree_copy(value, None)
        except _NotPlain:
            pass
    return copy.deepcopy(value)


def _tree_copy(node: Any, parent: Any) -> Any:
    if not _PLAIN_NODE.issuperset(node.__dict__):
        raise _NotPlain
    twin = object.__new__(type(node))
    twin.__dict__.update(node.__dict__)
    twin.parent = parent
    if node.children is not None:
        children = []
        for child in node.children:
            if isinstance(child, _ast.Node):
                children.append(_tree_copy(child, twin))
            elif isinstance(child, _PLAIN_LEAVES):
                children.append(child)
            else:
                raise _NotPlain
        twin.children = children
    return twin


def _checked_at_the_root(self: Any, node: Any) -> Any:
    # Both checks leave the tree as it is and raise on what they find; see the module docstring.
    if isinstance(node, _ast.UpdateExpression):
        try:
            _process(self, node)
        except Exception:
            return moto_traverse(self, node)  # moto's walk, for moto's own error
        return node
    return moto_traverse(self, node)


@functools.lru_cache(maxsize=_DEFINITIONS_KEPT)
def _has_parallel_state(definition: str) -> bool:
    """Whether any state of the definition (nested ones included) is a Parallel state; True
    when that cannot be told (the program is then built per execution, as moto does)."""
    try:
        pending: list[Any] = [json.loads(definition)]
    except ValueError:
        return True
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if value.get("Type") == "Parallel":
                return True
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _with_keys_drawn(program: EvalComponent) -> EvalComponent:
    """The program, each of its components' heap keys drawn (two executions drawing one at
    once would each keep their own)."""
    seen: set[int] = set()
    pending: list[Any] = [program]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, EvalComponent):
            _ = value.heap_key
        if isinstance(value, Component):
            pending.extend(vars(value).values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
    return program


def _parse_tree(original: Any) -> Any:
    def tree_of(definition: str) -> tuple[Any, dict[int, str]]:
        # A definition that does not parse raises each time (lru_cache keeps no exceptions).
        _program, tree = original(definition)
        return tree, _texts_of(tree)

    return tree_of


# The node texts of the tree whose program this thread is building (None: none is).
_building = threading.local()
moto_get_text: Any = RuleContext.getText


def _texts_of(tree: Any) -> dict[int, str]:
    """Each rule node's text, by the node's id: the tree is kept with it (so no id is reused
    while the texts are), and a tree is only read once parsed."""
    texts: dict[int, str] = {}
    pending: list[tuple[Any, bool]] = [(tree, False)]
    while pending:
        node, children_done = pending.pop()
        if not isinstance(node, ParserRuleContext):
            continue
        children = node.children or []
        if children_done:
            texts[id(node)] = "".join(
                texts[id(child)] if isinstance(child, ParserRuleContext) else child.getText()
                for child in children
            )
        else:
            pending.append((node, True))
            pending.extend((child, False) for child in children)
    return texts


def _kept_text(self: Any) -> str:
    texts: dict[int, str] | None = getattr(_building, "texts", None)
    if texts is not None:
        text = texts.get(id(self))
        if text is not None:
            return text
    return str(moto_get_text(self))


def _serialize_type_structure(
    self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
) -> None:
    if key and shape.name == "AttributeValue" and isinstance(value, Mapping):
        serialized[self.get_serialized_name(shape, key)] = attribute_value_wire(value)
        return
    moto_serialize_structure(self, serialized, value, shape, key)


def attribute_value_wire(value: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB attribute value as moto's serializer writes it: members that are None left
    out, strings as `str`, blobs in base64, maps and lists member by member."""
    wire: dict[str, Any] = {}
    for member in _ATTRIBUTE_VALUE_MEMBERS:
        item = value.get(member)
        if item is None:
            continue
        if member in _STRINGS:
            wire[member] = _string(item)
        elif member in _BLOBS:
            wire[member] = _base64(item)
        elif member in _STRING_SETS:
            wire[member] = [_string(x) for x in item]
        elif member in _BLOB_SETS:
            wire[member] = [_base64(x) for x in item]
        elif member == "M":
            wire[member] = {k: attribute_value_wire(v) for k, v in item.items() if v is not None}
        elif member == "L":
            wire[member] = [None if v is None else attribute_value_wire(v) for v in item]
        else:  # NULL, BOOL
            wire[member] = item
    return wire


def _string(value: Any) -> Any:
    if isinstance(value, Enum):
        value = value.value
    return str(value) if value not in (None, {}, []) else value


def _base64(value: str | bytes) -> str:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return base64.b64encode(raw).strip().decode("utf-8")
