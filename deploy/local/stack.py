#!/usr/bin/env python3
"""Run a local Kafka (KRaft, single node) and FerretDB (MongoDB wire protocol on SQLite).

Usage: python3 deploy/local/stack.py {install,start,stop,status,wipe,env} [kafka] [ferretdb]

Stdlib only: this runs before any virtualenv exists. Nothing is installed system-wide:
Kafka is assembled from Maven Central and FerretDB is built from its Go module source,
both into STACK_CACHE; data, logs and pid files live in STACK_STATE. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import string
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

KAFKA_VERSION = "4.1.1"
FERRETDB_VERSION = "1.24.2"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
GO_JSON_MODULE = "github.com/goccy/go-json"  # see decode_json_faster
GO_JSON_VERSION = "v0.10.5"

HEALTH_TIMEOUT_S = 90
STOP_TIMEOUT_S = 20
LOG_TAIL_LINES = 30
INSTALLED_MARKER = ".installed"

# Debian package to suggest for each external tool.
TOOL_PACKAGES = {"java": "openjdk-17-jre-headless", "mvn": "maven", "go": "golang"}


class StackError(Exception):
    """A failure with a message meant for the user; main() prints it and exits 1."""


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise StackError(f"{name} must be a port number, got {value!r}") from None


class Config:
    """Paths and ports, read from the environment once."""

    def __init__(self) -> None:
        self.cache = Path(os.environ.get("STACK_CACHE", "~/.cache/socialpub-stack")).expanduser().resolve()
        self.state = Path(os.environ.get("STACK_STATE", REPO_ROOT / ".stack")).expanduser().resolve()
        self.kafka_port = env_int("KAFKA_PORT", 9092)
        self.kafka_controller_port = env_int("KAFKA_CONTROLLER_PORT", 9093)
        self.mongo_port = env_int("MONGO_PORT", 27017)
        self.ferretdb_debug_port = env_int("FERRETDB_DEBUG_PORT", 8088)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(
            f"'{name}' is not installed (or not on PATH). "
            f"Install it, e.g. on Debian/Ubuntu: sudo apt-get install {TOOL_PACKAGES[name]}"
        )
    return path


def run(
    args: list[str], cwd: Path | str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a build/setup command; on failure raise with its output so the user sees why."""
    # Arguments come from this script's own constants and paths, never from user input.
    result = subprocess.run(  # noqa: S603
        args, check=False, cwd=cwd, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-LOG_TAIL_LINES:])
        raise StackError(f"command failed (exit {result.returncode}): {' '.join(args)}\n{output}")
    return result


def install_atomically(final_dir: Path, build: Callable[[Path], None]) -> None:
    """Build into a temp dir next to final_dir, then rename it into place.

    A crashed or interrupted install therefore never looks finished.
    """
    if (final_dir / INSTALLED_MARKER).exists():
        return
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f"{final_dir.name}.tmp-", dir=final_dir.parent))
    tmp_dir.chmod(0o755)  # mkdtemp makes it private; the install is not secret
    try:
        build(tmp_dir)
        (tmp_dir / INSTALLED_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        shutil.rmtree(final_dir, ignore_errors=True)  # leftover without a marker
        tmp_dir.rename(final_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        data += chunk
    return data


def port_in_use(port: int) -> bool:
    try:
        with socket.create_connection(("localhost", port), timeout=1):
            return True
    except OSError:
        return False


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(read_text(path).splitlines()[-lines:]) or "(log is empty)"


class Component:
    """One server process: how to install, configure, run and health-check it."""

    name = ""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.home = cfg.state / self.name  # data and generated config; removed by `wipe`
        self.log_file = cfg.state / "logs" / f"{self.name}.log"
        self.pid_file = cfg.state / "run" / f"{self.name}.pid"

    @property
    def dist(self) -> Path:
        """Where install() puts the software, under STACK_CACHE."""
        raise NotImplementedError

    def install(self) -> None:
        raise NotImplementedError

    def prepare(self) -> None:
        """Create dirs/config before each start."""
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def extra_env(self) -> dict[str, str]:
        """Environment variables the server starts with, on top of ours."""
        return {}

    def cmdline_marker(self) -> str:
        """A string in our process's command line that ties it to this state dir.

        Checked before signalling a pid, so a recycled pid is never killed.
        """
        raise NotImplementedError

    def ports(self) -> dict[str, int]:
        """Ports this component listens on, keyed by the env var that sets them."""
        raise NotImplementedError

    def healthy(self) -> bool:
        raise NotImplementedError

    def env_lines(self) -> list[str]:
        raise NotImplementedError


class Kafka(Component):
    name = "kafka"

    @property
    def dist(self) -> Path:
        return self.cfg.cache / f"kafka-{KAFKA_VERSION}"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    def java(self, main_class: str, *args: str, jvm_options: tuple[str, ...] = ()) -> list[str]:
        # Java expands the trailing `*` of a classpath entry itself; no shell involved.
        return [require_tool("java"), *jvm_options, "-cp", str(self.dist / "libs" / "*"), main_class, *args]

    def install(self) -> None:
        if (self.dist / INSTALLED_MARKER).exists():
            return
        mvn = require_tool("mvn")
        require_tool("java")
        print(f"kafka: assembling Kafka {KAFKA_VERSION} from Maven Central into {self.dist} ...", flush=True)

        def build(tmp_dir: Path) -> None:
            run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(HERE / "kafka" / "pom.xml"),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={tmp_dir / 'libs'}",
                    "-DincludeScope=runtime",
                ]
            )

        install_atomically(self.dist, build)

    def prepare(self) -> None:
        data_dir = self.home / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        template = string.Template((HERE / "kafka" / "server.properties.template").read_text())
        self.properties_file.write_text(
            template.substitute(
                kafka_port=self.cfg.kafka_port,
                controller_port=self.cfg.kafka_controller_port,
                data_dir=data_dir,
            )
        )
        # KRaft storage must be formatted once; meta.properties is what formatting writes.
        if not (data_dir / "meta.properties").exists():
            tool = "kafka.tools.StorageTool"
            cluster_id = run(self.java(tool, "random-uuid")).stdout.strip()
            run(self.java(tool, "format", "--standalone", "-t", cluster_id, "-c", str(self.properties_file)))

    def command(self) -> list[str]:
        log_config = f"-Dlog4j2.configurationFile={HERE / 'kafka' / 'log4j2.yaml'}"
        return self.java("kafka.Kafka", str(self.properties_file), jvm_options=("-Xms256m", "-Xmx1g", log_config))

    def cmdline_marker(self) -> str:
        return str(self.properties_file)

    def ports(self) -> dict[str, int]:
        return {"KAFKA_PORT": self.cfg.kafka_port, "KAFKA_CONTROLLER_PORT": self.cfg.kafka_controller_port}

    def healthy(self) -> bool:
        # The broker port can answer a little before the controller has settled, so also
        # wait for the line Kafka logs once startup is complete (the log is fresh per start).
        return kafka_api_versions_ok(self.cfg.kafka_port) and "Kafka Server started" in read_text(self.log_file)

    def env_lines(self) -> list[str]:
        return [f"export KAFKA_BOOTSTRAP_SERVERS=localhost:{self.cfg.kafka_port}"]


def kafka_api_versions_ok(port: int) -> bool:
    """Send a Kafka ApiVersions v0 request and check for a matching, error-free answer."""
    correlation_id = 0x57AC
    client_id = b"stack.py"
    # Request header v1: api_key=18 (ApiVersions), api_version=0, correlation_id, client_id.
    request = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection(("localhost", port), timeout=2) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", recv_exact(sock, 4))
            response = recv_exact(sock, size)
    except OSError:
        return False
    # Response: correlation_id (header v0), then error_code first in the body.
    got_id, error_code = struct.unpack(">ih", response[:6])
    return bool(got_id == correlation_id and error_code == 0)


def use_id_index(src: Path) -> None:
    """Make FerretDB's SQLite backend use its `_id` index.

    1. v1.24.2 builds the unique `_id` index on the expression `_ferretdb_sjson->"_id"` but looks
       documents up with `_ferretdb_sjson->'$._id'`. SQLite only uses an expression index for the
       same expression, so every find, update and delete by `_id` scanned the whole collection
       (139 lookups/s at 5,000 documents). Query with the index's own expression.
    2. It narrows by `_id` in SQL only when the filter is `{_id: ...}` alone, so a
       compare-and-set such as `{_id: ..., state: "due"}` scanned everything too. Every handler
       filters the rows again in Go, so narrowing by `_id` whenever the filter has one is safe.
    """
    backend = src / "internal" / "backends" / "sqlite"
    _replace_once(
        backend / "metadata" / "metadata.go",
        "IDColumn = DefaultColumn + \"->'$._id'\"",
        'IDColumn = DefaultColumn + `->"_id"`',
    )
    _replace_once(
        backend / "collection.go",
        '\tif params.Filter.Len() == 1 {\n\t\tv, _ := params.Filter.Get("_id")\n\t\tswitch v.(type) {\n'
        "\t\tcase string, types.ObjectID:\n\t\t\twhereClause",
        # Len() first: Has() dereferences the document, and a query without a filter has none.
        '\tif params.Filter.Len() > 0 && params.Filter.Has("_id") {\n'
        '\t\tv, _ := params.Filter.Get("_id")\n\t\tswitch v.(type) {\n'
        "\t\tcase string, types.ObjectID:\n\t\t\twhereClause",
    )


def narrow_id_in(src: Path) -> None:
    """Make FerretDB's SQLite backend use its `_id` index for `{_id: {$in: [...]}}`.

    v1.24.2 narrows in SQL only by a single `_id`, so reading a batch of documents by their ids
    meant one command per id, or one scan of the whole collection. Narrow by `_id IN (...)` when
    every value is a string or an ObjectID; the handler still filters the rows again in Go.
    """
    backend = src / "internal" / "backends" / "sqlite"
    (backend / "socialpub_id_in.go").write_text(
        'package sqlite\n\nimport (\n\t"fmt"\n\t"strings"\n\n'
        '\t"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"\n'
        '\t"github.com/FerretDB/FerretDB/internal/handler/sjson"\n'
        '\t"github.com/FerretDB/FerretDB/internal/types"\n)\n\n'
        "// idInClause returns the WHERE clause for a condition {$in: [ids...]} on _id, if it is one.\n"
        "func idInClause(condition *types.Document) (string, []any, bool) {\n"
        '\tif condition.Len() != 1 || !condition.Has("$in") {\n\t\treturn "", nil, false\n\t}\n'
        '\tv, _ := condition.Get("$in")\n'
        "\tvalues, ok := v.(*types.Array)\n"
        # SQLite allows 32,766 parameters; stay far below it.
        '\tif !ok || values.Len() == 0 || values.Len() > 1000 {\n\t\treturn "", nil, false\n\t}\n'
        "\targs := make([]any, 0, values.Len())\n"
        "\tfor i := 0; i < values.Len(); i++ {\n"
        "\t\tvalue, _ := values.Get(i)\n"
        "\t\tswitch value.(type) {\n\t\tcase string, types.ObjectID:\n"
        '\t\tdefault:\n\t\t\treturn "", nil, false\n\t\t}\n'
        "\t\tb, err := sjson.MarshalSingleValue(value)\n"
        '\t\tif err != nil {\n\t\t\treturn "", nil, false\n\t\t}\n'
        "\t\targs = append(args, string(b))\n\t}\n"
        '\tplaceholders := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")\n'
        "\treturn fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, placeholders), args, true\n}\n"
    )
    _replace_once(
        backend / "collection.go",
        "\t\t\twhereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)\n"
        "\t\t\targs = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}\n\t\t}\n\t}\n\n\tq += whereClause",
        "\t\t\twhereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)\n"
        "\t\t\targs = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}\n"
        "\t\tcase *types.Document:\n"
        "\t\t\tif clause, inArgs, ok := idInClause(v.(*types.Document)); ok {\n"
        "\t\t\t\twhereClause, args = clause, inArgs\n\t\t\t}\n"
        "\t\t}\n\t}\n\n\tq += whereClause",
    )


def skip_lifetime_tracking(src: Path) -> None:
    """Stop FerretDB tracking the lifetime of every iterator.

    It is a developer aid (a pprof profile entry with a stack trace, and a finalizer, per
    object) and took 7 % of FerretDB's CPU under our load benchmark.
    """
    resource = src / "internal" / "util" / "resource" / "resource.go"
    for function in ("Track", "Untrack"):
        signature = f"func {function}(obj any, token *Token) {{\n"
        _replace_once(resource, signature, signature + "\tif !trackLifetimes {\n\t\treturn\n\t}\n\n")
    (resource.parent / "socialpub_tracking.go").write_text(
        "package resource\n\n// trackLifetimes is off: see skip_lifetime_tracking in deploy/local/stack.py.\n"
        "const trackLifetimes = false\n"
    )


def serialize_writes(src: Path) -> None:
    """Make FerretDB's conditional updates atomic, as they are on MongoDB.

    v1.24.2 on SQLite runs an update as read, match in Go, write back, with nothing in between
    held: eight concurrent `update_one({_id: k, state: "due"}, {$set: {state: "claimed"}})`
    all reported a match, where MongoDB lets exactly one win. Our compare-and-set claims (the
    publisher's no-double-post ledger) rely on that, so update, findAndModify, delete and insert
    commands take a lock per database. Per database, not per process: one lock made every
    service's writes queue behind every other's. Not per collection: a database is one SQLite file
    with a single writer, and two writers on it meet SQLite's busy handler, which sleeps.
    """
    handler = src / "internal" / "handler"
    (handler / "socialpub_write_lock.go").write_text(
        'package handler\n\nimport (\n\t"fmt"\n\t"sync"\n\n\t"github.com/FerretDB/wire"\n)\n\n'
        "// writeLocks serialize writes per database, so a conditional update is atomic.\n"
        "var writeLocks sync.Map\n\n"
        "// lockDatabase takes the lock of the command's database; call the result to release it.\n"
        "func lockDatabase(msg *wire.OpMsg) func() {\n"
        '\tkey := ""\n'
        "\tif document, err := opMsgDocument(msg); err == nil {\n"
        '\t\tdb, _ := document.Get("$db")\n'
        "\t\tkey = fmt.Sprint(db)\n"
        "\t}\n"
        "\tv, _ := writeLocks.LoadOrStore(key, new(sync.Mutex))\n"
        "\tmu := v.(*sync.Mutex)\n"
        "\tmu.Lock()\n"
        "\treturn mu.Unlock\n"
        "}\n"
    )
    for file, command in (
        ("msg_update.go", "MsgUpdate"),
        ("msg_findandmodify.go", "MsgFindAndModify"),
        ("msg_delete.go", "MsgDelete"),
        ("msg_insert.go", "MsgInsert"),
    ):
        signature = f"func (h *Handler) {command}(connCtx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {{\n"
        _replace_once(handler / file, signature, signature + "\tdefer lockDatabase(msg)()\n\n")


def write_updates_after_reading(src: Path) -> None:
    """Make FerretDB's SQLite backend write an update statement's documents in one transaction,
    after closing its read.

    v1.24.2 writes every matched document in a transaction of its own while the statement's
    query is still open, and keeps each statement's query open until the whole command ends.
    An open read stops SQLite's WAL checkpoint at every commit from finishing, so each commit
    tried again (22 % of FerretDB's CPU in a profile of single `update_one` calls), and a bulk
    of 100 update statements held all 100 pooled connections and waited forever for one more.
    Now a statement collects its modified documents, closes its query, and writes them together.
    """
    common = src / "internal" / "handler" / "common"
    update = common / "update.go"
    _replace_once(
        update,
        "\tresult := new(UpdateResult)\n",
        "\tresult := new(UpdateResult)\n\tvar modifiedDocs []*types.Document\n",
    )
    _replace_once(
        update,
        "\t\t\tif !upsert {\n\t\t\t\treturn result, nil\n\t\t\t}\n",
        "\t\t\tif !upsert {\n\t\t\t\titer.Close()\n"
        "\t\t\t\tif err = writeModified(ctx, c, modifiedDocs); err != nil {\n\t\t\t\t\treturn nil, err\n\t\t\t\t}\n"
        "\t\t\t\treturn result, nil\n\t\t\t}\n",
    )
    _replace_once(
        update,
        "\t\t} else if modified {\n"
        "\t\t\t_, err := c.UpdateAll(ctx, &backends.UpdateAllParams{Docs: []*types.Document{doc}})\n"
        "\t\t\tif err != nil {\n\t\t\t\treturn nil, lazyerrors.Error(err)\n\t\t\t}\n",
        "\t\t} else if modified {\n\t\t\tmodifiedDocs = append(modifiedDocs, doc)\n",
    )
    (common / "socialpub_write_modified.go").write_text(
        'package common\n\nimport (\n\t"context"\n\n'
        '\t"github.com/FerretDB/FerretDB/internal/backends"\n'
        '\t"github.com/FerretDB/FerretDB/internal/types"\n'
        '\t"github.com/FerretDB/FerretDB/internal/util/lazyerrors"\n)\n\n'
        "// writeModified writes a statement's modified documents in one transaction.\n"
        "func writeModified(ctx context.Context, c backends.Collection, docs []*types.Document) error {\n"
        "\tif len(docs) == 0 {\n\t\treturn nil\n\t}\n"
        "\tif _, err := c.UpdateAll(ctx, &backends.UpdateAllParams{Docs: docs}); err != nil {\n"
        "\t\treturn lazyerrors.Error(err)\n\t}\n"
        "\treturn nil\n}\n"
    )


def decode_json_faster(src: Path, go: str, env: dict[str, str]) -> None:
    """Make FerretDB's SQLite backend encode and decode its stored JSON with goccy/go-json.

    Every document FerretDB reads (a find, and every update, which reads before it writes) is
    decoded from JSON text by `sjson`, which used encoding/json: about a fifth of FerretDB's CPU
    under the load benchmark. go-json is a drop-in replacement for the same calls. Measured on an
    idle machine, FerretDB CPU per document: a bulk of 50 updates 0.36 -> 0.27 ms, a read by
    `_id` `$in` 0.14 -> 0.08 ms, one `find_one` 0.43 -> 0.37 ms. FerretDB's own sjson tests pass
    but for the wording of errors on malformed input.
    """
    sjson = src / "internal" / "handler" / "sjson"
    for path in sorted(sjson.glob("*.go")):
        if path.name.endswith("_test.go") or '\t"encoding/json"\n' not in read_text(path):
            continue
        _replace_once(path, '\t"encoding/json"\n', f'\tjson "{GO_JSON_MODULE}"\n')
    run([go, "get", f"{GO_JSON_MODULE}@{GO_JSON_VERSION}"], cwd=src, env=env)


def update_by_ids(src: Path) -> None:
    """Make FerretDB apply the statements of one update command together when each names its own
    `_id`: one read of all their documents, one transaction for the modified ones and one insert
    for the upserted ones.

    v1.24.2 runs every statement of a bulk update as its own query and its own transaction. Our
    services batch their updates by `_id` (checkpoints, board compare-and-set replaces, pull
    records, rate windows), and updates were 70 % of FerretDB's CPU in a publishing burst, with
    preparing SQL and committing a large part of that. The code is `ferretdb/update_by_ids.go`;
    statements of any other shape take the old path.
    """
    shutil.copyfile(
        HERE / "ferretdb" / "update_by_ids.go", src / "internal" / "handler" / "common" / "socialpub_update_by_ids.go"
    )
    _replace_once(
        src / "internal" / "handler" / "msg_update.go",
        "\tfor _, u := range params.Updates {\n",
        "\tif c, err := db.Collection(params.Collection); err == nil && !h.DisablePushdown {\n"
        "\t\tm, mod, ups, ok, err := common.UpdateByIDs(ctx, c, params.Updates)\n"
        "\t\tif err != nil {\n\t\t\treturn 0, 0, nil, lazyerrors.Error(err)\n\t\t}\n"
        "\t\tif ok {\n\t\t\treturn m, mod, ups, nil\n\t\t}\n\t}\n\n"
        "\tfor i, u := range params.Updates {\n",
    )
    # Each upserted id is reported with the index of its statement, as MongoDB does (v1.24.2
    # reported the count of upserts so far, and PyMongo maps the ids back by that index).
    _replace_once(
        src / "internal" / "handler" / "msg_update.go",
        '\t\t\t\t"index", int32(upserted.Len()),\n',
        '\t\t\t\t"index", int32(i),\n',
    )


def optimize_with_profile(src: Path) -> None:
    """Build FerretDB with Go's profile-guided optimization, from CPU profiles of our own load.

    `ferretdb/default.pgo` merges FerretDB's CPU profiles (`/debug/pprof/profile`, 25-30 s each)
    from two publishing bursts and a steady run of `make bench` on the patched v1.24.2. With it Go
    inlines and devirtualizes what is hot there: SQLite's virtual machine, JSON and the update path.
    A fixed write workload (20,000 inserts, then 40,000 updates by `_id`, in bulks of 50) cost
    FerretDB 6-12 % less CPU over four alternating pairs. A stale profile only optimizes less, so
    refresh it when FerretDB or our write pattern changes much.
    """
    shutil.copyfile(HERE / "ferretdb" / "default.pgo", src / "cmd" / "ferretdb" / "default.pgo")


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if text.count(old) != 1:
        raise StackError(f"cannot apply our FerretDB fix: {path} has changed upstream")
    path.write_text(text.replace(old, new))


class FerretDB(Component):
    name = "ferretdb"

    @property
    def dist(self) -> Path:
        # The suffix counts our local fixes (use_id_index, narrow_id_in, skip_lifetime_tracking,
        # serialize_writes, write_updates_after_reading, update_by_ids, decode_json_faster,
        # optimize_with_profile), so a cache built without the latest one is rebuilt.
        return self.cfg.cache / f"ferretdb-{FERRETDB_VERSION}-fix12"

    def install(self) -> None:
        if (self.dist / INSTALLED_MARKER).exists():
            return
        go = require_tool("go")
        print(f"ferretdb: building FerretDB v{FERRETDB_VERSION} into {self.dist} (a minute or two) ...", flush=True)
        go_env = {**os.environ, "GOFLAGS": "-buildvcs=false"}

        def build(tmp_dir: Path) -> None:
            # `go install ...@v1.24.2` fails here (the proxy refuses the @v/list lookup it
            # does for deprecation notices), so fetch the exact module version via a
            # throwaway module, which needs no version listing.
            with tempfile.TemporaryDirectory() as scratch:
                Path(scratch, "go.mod").write_text(
                    f"module local/ferretdb-build\n\ngo 1.22\n\nrequire {FERRETDB_MODULE} v{FERRETDB_VERSION}\n"
                )
                download = run(
                    [go, "mod", "download", "-json", f"{FERRETDB_MODULE}@v{FERRETDB_VERSION}"], cwd=scratch, env=go_env
                )
            module_dir = Path(json.loads(download.stdout)["Dir"])
            src = tmp_dir / "src"
            copy_writable(module_dir, src)
            # The module zip ships an empty version.txt (it is generated from git), and the
            # binary panics at start-up without a version, so supply it.
            (src / "build" / "version" / "version.txt").write_text(f"v{FERRETDB_VERSION}\n")
            use_id_index(src)
            narrow_id_in(src)
            skip_lifetime_tracking(src)
            serialize_writes(src)
            write_updates_after_reading(src)
            update_by_ids(src)
            decode_json_faster(src, go, go_env)
            optimize_with_profile(src)
            run([go, "build", "-o", str(tmp_dir / "bin" / "ferretdb"), "./cmd/ferretdb"], cwd=src, env=go_env)

        install_atomically(self.dist, build)

    def prepare(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            str(self.dist / "bin" / "ferretdb"),
            "--handler=sqlite",
            # The path must end with "/" (it is a directory). WAL with synchronous=NORMAL: a commit
            # no longer waits for an fsync (FerretDB serializes writes, so each fsync stalled all
            # of them); a crashed process loses nothing, only a crashed machine can lose the last
            # commits, which is fine for a local stack (production runs MongoDB).
            f"--sqlite-url=file:{self.home / 'data'}/?_pragma=synchronous(normal)",
            f"--listen-addr=127.0.0.1:{self.cfg.mongo_port}",
            f"--debug-addr=127.0.0.1:{self.cfg.ferretdb_debug_port}",
            "--telemetry=disable",
            f"--state-dir={self.home}",
            "--log-level=WARN",
        ]

    def extra_env(self) -> dict[str, str]:
        # Go's collector ran at its default GOGC=100 for a live heap of a few MB: 15 % of FerretDB's
        # CPU in a publishing burst went to collecting and to the preemptions it causes. At 400 it
        # is 7 %, for a resident size of about 150 MB instead of 110 (210 at most seen). A GOGC set by
        # the user wins.
        return {"GOGC": os.environ.get("GOGC", "400")}

    def cmdline_marker(self) -> str:
        return f"--state-dir={self.home}"

    def ports(self) -> dict[str, int]:
        return {"MONGO_PORT": self.cfg.mongo_port, "FERRETDB_DEBUG_PORT": self.cfg.ferretdb_debug_port}

    def healthy(self) -> bool:
        # /debug/readyz only pings the backend when --setup-database is given, so also do a
        # real MongoDB round trip on the client port.
        return ferretdb_readyz_ok(self.cfg.ferretdb_debug_port) and mongo_hello_ok(self.cfg.mongo_port)

    def env_lines(self) -> list[str]:
        return [f"export MONGO_URL=mongodb://localhost:{self.cfg.mongo_port}/"]


def copy_writable(src: Path, dst: Path) -> None:
    """Copy a tree without its permissions: the Go module cache is read-only."""
    for root, _dirs, files in os.walk(src):
        target = dst / Path(root).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(root, name), target / name)


def ferretdb_readyz_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/debug/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:  # includes URLError and HTTPError (non-2xx)
        return False


def mongo_hello_ok(port: int) -> bool:
    """Send {hello: 1, $db: "admin"} as an OP_MSG and check the reply says ok: 1."""
    request_id = 0x57AC
    fields = b"\x10hello\x00" + struct.pack("<i", 1)  # int32 element
    fields += b"\x02$db\x00" + struct.pack("<i", len(b"admin\x00")) + b"admin\x00"  # string element
    document = struct.pack("<i", 4 + len(fields) + 1) + fields + b"\x00"
    body = struct.pack("<I", 0) + b"\x00" + document  # flagBits, section kind 0 (body)
    op_msg = 2013
    message = struct.pack("<iiii", 16 + len(body), request_id, 0, op_msg) + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(message)
            (length,) = struct.unpack("<i", recv_exact(sock, 4))
            reply = recv_exact(sock, length - 4)
    except OSError:
        return False
    _reply_id, response_to, op_code = struct.unpack("<iii", reply[:12])
    # The hello reply is flat, so looking for the `ok: 1.0` double element is enough.
    return response_to == request_id and op_code == op_msg and b"\x01ok\x00" + struct.pack("<d", 1.0) in reply


# --- process tracking -------------------------------------------------------------------


def is_ours(pid: int, marker: str) -> bool:
    """True if pid is alive and its command line carries our marker.

    A zombie has an empty cmdline, so an exited-but-unreaped child counts as gone.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return marker.encode() in cmdline.split(b"\0")


def running_pid(comp: Component) -> int | None:
    """The pid of our running process for comp, removing a stale pid file."""
    try:
        pid = int(comp.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if is_ours(pid, comp.cmdline_marker()):
        return pid
    comp.pid_file.unlink(missing_ok=True)
    return None


def check_ports_free(comp: Component) -> None:
    for var, port in comp.ports().items():
        if port_in_use(port):
            raise StackError(
                f"{comp.name}: port {port} is already in use by a process this tool did not start; "
                f"stop it or choose another port with {var}=..."
            )


def spawn(comp: Component) -> subprocess.Popen[bytes]:
    comp.log_file.parent.mkdir(parents=True, exist_ok=True)
    comp.pid_file.parent.mkdir(parents=True, exist_ok=True)
    # A fresh log per start keeps "last lines" and Kafka's started-line check about this run.
    if comp.log_file.exists():
        comp.log_file.replace(comp.log_file.with_suffix(".log.1"))
    with comp.log_file.open("wb") as log:
        # New session: the server keeps running after this script exits and is not hit by
        # the terminal's Ctrl-C.
        process = subprocess.Popen(  # noqa: S603 (our own command line)
            comp.command(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=comp.home,
            env={**os.environ, **comp.extra_env()},
        )
    comp.pid_file.write_text(f"{process.pid}\n")
    return process


def is_alive(comp: Component, pid: int, process: subprocess.Popen[bytes] | None) -> bool:
    # A child we just spawned is checked with poll(): right after exec its
    # /proc/<pid>/cmdline can briefly read empty, which is_ours() would take as "gone".
    if process is not None:
        return process.poll() is None
    return is_ours(pid, comp.cmdline_marker())


def wait_healthy(comp: Component, pid: int, process: subprocess.Popen[bytes] | None, deadline: float) -> str | None:
    """Wait until comp is healthy; return None, or why it is not."""
    while time.monotonic() < deadline:
        if not is_alive(comp, pid, process):
            return "the process exited"
        if comp.healthy():
            return None
        time.sleep(0.5)
    return f"not healthy after {HEALTH_TIMEOUT_S} s"


def terminate(comp: Component, pid: int) -> None:
    """SIGTERM, wait, then SIGKILL: only ever called with a pid verified by is_ours."""
    marker = comp.cmdline_marker()
    for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and is_ours(pid, marker):
            time.sleep(0.2)
        if not is_ours(pid, marker):
            break
        print(f"{comp.name}: still running after {wait_s} s, sending SIGKILL", flush=True)
    if is_ours(pid, marker):
        raise StackError(f"{comp.name}: pid {pid} survived SIGKILL")
    comp.pid_file.unlink(missing_ok=True)


# --- commands ---------------------------------------------------------------------------


def cmd_install(comps: list[Component]) -> int:
    for comp in comps:
        comp.install()
        print(f"{comp.name}: installed in {comp.dist}")
    return 0


def cmd_start(comps: list[Component], started_file: Path | None) -> int:
    started: list[str] = []
    try:
        for comp in comps:
            comp.install()
        ignore_state_dir(comps[0].cfg.state)
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        already_running = {comp: running_pid(comp) for comp in comps}
        to_spawn = [comp for comp, pid in already_running.items() if pid is None]
        # Everything that can fail is checked before the first spawn, so a failure never
        # leaves a server running that this invocation does not report.
        for comp in to_spawn:
            check_ports_free(comp)
            comp.prepare()
        # Spawn everything first so the components boot in parallel, then wait for each.
        spawned = {comp: spawn(comp) for comp in to_spawn}
        failed = False
        for comp in comps:
            process = spawned.get(comp)
            pid = process.pid if process is not None else already_running[comp]
            assert pid is not None
            problem = wait_healthy(comp, pid, process, deadline)
            if problem is None and process is None:
                print(f"{comp.name}: already running (pid {pid}), healthy; left as is")
            elif problem is None:
                started.append(comp.name)
                print(f"{comp.name}: started (pid {pid}), healthy")
            else:
                failed = True
                report_unhealthy(comp, problem)
                if process is not None:
                    stop_failed_start(comp, process)
        if not failed:
            print("\n".join(line for comp in comps for line in comp.env_lines()))
        return 1 if failed else 0
    finally:
        # Written even on failure, so the caller can stop exactly what this run started.
        if started_file is not None:
            started_file.write_text("".join(f"{name}\n" for name in started))


def report_unhealthy(comp: Component, problem: str) -> None:
    print(f"{comp.name}: FAILED to become healthy: {problem}. Log: {comp.log_file}", file=sys.stderr)
    print(f"--- last {LOG_TAIL_LINES} lines of {comp.log_file} ---\n{tail(comp.log_file)}\n---", file=sys.stderr)


def stop_failed_start(comp: Component, process: subprocess.Popen[bytes]) -> None:
    """Do not leave a half-started server behind: the caller would not know to stop it."""
    if process.poll() is None:
        terminate(comp, process.pid)
    comp.pid_file.unlink(missing_ok=True)


def cmd_stop(comps: list[Component]) -> int:
    for comp in comps:
        pid = running_pid(comp)
        if pid is None:
            print(f"{comp.name}: not running")
            continue
        terminate(comp, pid)
        print(f"{comp.name}: stopped (pid {pid})")
    return 0


def cmd_status(comps: list[Component]) -> int:
    all_healthy = True
    for comp in comps:
        pid = running_pid(comp)
        if pid is None:
            all_healthy = False
            print(f"{comp.name}: not running")
        elif comp.healthy():
            ports = ", ".join(f"{var}={port}" for var, port in comp.ports().items())
            print(f"{comp.name}: running (pid {pid}), healthy ({ports})")
        else:
            all_healthy = False
            print(f"{comp.name}: running (pid {pid}), NOT healthy; log: {comp.log_file}")
    return 0 if all_healthy else 1


def cmd_wipe(comps: list[Component]) -> int:
    cmd_stop(comps)
    for comp in comps:
        shutil.rmtree(comp.home, ignore_errors=True)
        print(f"{comp.name}: deleted {comp.home}")
    return 0


def cmd_env(comps: list[Component]) -> int:
    for comp in comps:
        print("\n".join(comp.env_lines()))
    return 0


def ignore_state_dir(state: Path) -> None:
    """Keep the state dir (default <repo>/.stack) out of git without touching .gitignore."""
    state.mkdir(parents=True, exist_ok=True)
    gitignore = state / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")


COMPONENTS = {"kafka": Kafka, "ferretdb": FerretDB}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["install", "start", "stop", "status", "wipe", "env"])
    parser.add_argument(
        "components", nargs="*", metavar="component", help=f"one or more of {', '.join(COMPONENTS)} (default: all)"
    )
    parser.add_argument(
        "--started-file", type=Path, help="start only: write the names of the components this run started, one per line"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.components) - set(COMPONENTS))
    if unknown:
        parser.error(f"unknown component(s): {', '.join(unknown)} (choose from {', '.join(COMPONENTS)})")
    if args.started_file is not None and args.command != "start":
        parser.error("--started-file only applies to start")

    cfg = Config()
    names = [name for name in COMPONENTS if not args.components or name in args.components]
    comps = [COMPONENTS[name](cfg) for name in names]
    if args.command == "start":
        return cmd_start(comps, args.started_file)
    handlers = {"install": cmd_install, "stop": cmd_stop, "status": cmd_status, "wipe": cmd_wipe, "env": cmd_env}
    return handlers[args.command](comps)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
