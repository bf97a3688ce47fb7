"""The file tools on the session's sandbox filesystem, and every way out of it that they must refuse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loophost.runtime.toolset._files_tools import glob_regex

from .conftest import Factory, Sandbox


async def test_write_edit_read_glob_grep(box: Sandbox) -> None:
    wrote = await box.call("write", file_path="/workspace/src/app.py", content="a = 1\nb = 2\na = 3\n")
    assert wrote.text == "Wrote 18 bytes to /workspace/src/app.py"
    assert box.host("/workspace/src/app.py").read_text() == "a = 1\nb = 2\na = 3\n"
    ambiguous = await box.call("edit", file_path="src/app.py", old_string="a = ", new_string="x = ")
    assert ambiguous.is_error and "occurs 2 times" in ambiguous.text
    missing = await box.call("edit", file_path="src/app.py", old_string="zzz", new_string="y")
    assert missing.is_error and "not found" in missing.text
    unique = await box.call("edit", file_path="src/app.py", old_string="b = 2", new_string="b = 20")
    assert not unique.is_error, unique.text
    every = await box.call("edit", file_path="src/app.py", old_string="a = ", new_string="x = ", replace_all=True)
    assert "replaced 2 occurrences" in every.text
    read = await box.call("read", file_path="/workspace/src/app.py")
    assert read.text == "     1\tx = 1\n     2\tb = 20\n     3\tx = 3"
    part = await box.call("read", file_path="/workspace/src/app.py", view_range=[2, 2])
    assert part.text == "     2\tb = 20"
    await box.call("write", file_path="/workspace/docs/readme.md", content="x = notes\n")
    assert (await box.call("glob", pattern="**/*.py")).text == "/workspace/src/app.py"
    assert (await box.call("glob", pattern="/workspace/**/*.{md,py}")).text.splitlines() == [
        "/workspace/docs/readme.md",
        "/workspace/src/app.py",
    ]
    grep = await box.call("grep", pattern=r"^x = \d")
    assert grep.text.splitlines() == ["/workspace/src/app.py:1:x = 1", "/workspace/src/app.py:3:x = 3"]
    assert (await box.call("grep", pattern="notes", path="/workspace/docs/readme.md")).text.endswith(":1:x = notes")
    listing = await box.call("read", file_path="/workspace")
    assert listing.text.splitlines()[1:] == ["docs/", "src/"]


async def test_bad_input_gives_error_results(box: Sandbox) -> None:
    cases = [
        ("read", {}),
        ("read", {"file_path": 3}),
        ("read", {"file_path": "/workspace/none.txt"}),
        ("read", {"file_path": "/workspace", "view_range": [0, 1]}),
        ("write", {"file_path": "/workspace/x"}),
        ("edit", {"file_path": "/workspace/x", "old_string": "", "new_string": "a"}),
        ("grep", {"pattern": "("}),
        ("glob", {"pattern": ""}),
        ("read", {"file_path": "/workspace/\x00x"}),
    ]
    for tool, tool_input in cases:
        result = await box.toolset.tools()[tool].run(box.ctx, tool_input)
        assert result.is_error, (tool, tool_input, result)


async def test_binary_files_are_not_dumped(box: Sandbox) -> None:
    await box.toolset.confined(box.ctx)  # the workspace exists from the first tool call on
    box.host("/workspace/bin.dat").write_bytes(b"\x00\x01\x02" * 10)
    result = await box.call("read", file_path="/workspace/bin.dat")
    assert result.is_error and "binary" in result.text


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../../../../etc/passwd",
        "/workspace/../../../etc/passwd",
        "/proc/self/environ",
        "/proc/1/root/etc/passwd",
        "/",
        "/mnt/session",
    ],
)
async def test_paths_outside_the_sandbox_are_refused(box: Sandbox, path: str) -> None:
    result = await box.call("read", file_path=path)
    assert result.is_error, result.text
    assert "root:" not in result.text


async def test_symlinks_never_lead_out(box: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host secret\n")
    workspace = box.host("/workspace")
    await box.call("write", file_path="/workspace/inside.txt", content="inside\n")
    os.symlink(str(secret), workspace / "abs-link")
    os.symlink("../../../../../../../../../../" + str(secret).lstrip("/"), workspace / "rel-link")
    os.symlink("/", workspace / "root-link")
    os.symlink("/proc/self/root", workspace / "proc-link")
    os.symlink(str(tmp_path), workspace / "dir-link")
    os.symlink("/workspace/inside.txt", workspace / "good-link")  # a sandbox path: fine
    for name in ("abs-link", "rel-link", "root-link/" + str(secret).lstrip("/"), "proc-link/etc/passwd"):
        result = await box.call("read", file_path=f"/workspace/{name}")
        assert result.is_error and "host secret" not in result.text, (name, result.text)
    assert (await box.call("read", file_path="/workspace/good-link")).text == "     1\tinside"
    # writing through a link that points out cannot create or change a host file
    for name in ("abs-link", "dir-link/new.txt", "root-link/tmp/escaped.txt"):
        result = await box.call("write", file_path=f"/workspace/{name}", content="pwned")
        assert result.is_error or not Path(str(secret)).read_text().startswith("pwned"), name
    assert secret.read_text() == "host secret\n"
    assert not (tmp_path / "new.txt").exists()
    assert not Path("/tmp/escaped.txt").exists()
    # grep and glob do not follow links out either
    assert (await box.call("grep", pattern="host secret")).text.startswith("No matches")
    assert "new.txt" not in (await box.call("glob", pattern="**/*")).text


async def test_hard_links_are_not_written_through(box: Sandbox) -> None:
    await box.call("write", file_path="/workspace/a.txt", content="one")
    os.link(box.host("/workspace/a.txt"), box.host("/workspace/b.txt"))
    result = await box.call("write", file_path="/workspace/b.txt", content="two")
    assert result.is_error and "hard links" in result.text
    assert box.host("/workspace/a.txt").read_text() == "one"


async def test_file_resources_are_mounted_read_only(sandbox_factory: Factory, mode: str) -> None:
    box = await sandbox_factory(
        uploads={"data.csv": b"a,b\n1,2\n", "cfg.json": b'{"k": 1}'},
        resources=[
            {"type": "file", "file_id": "data.csv"},
            {"type": "file", "file_id": "cfg.json", "mount_path": "/workspace/config/cfg.json"},
        ],
    )
    data_id = box.session.resources[0].file_id  # type: ignore[union-attr]
    default = f"/mnt/session/uploads/{data_id}"
    assert (await box.call("read", file_path=default)).text == "     1\ta,b\n     2\t1,2"
    assert (await box.call("read", file_path="/workspace/config/cfg.json")).text == '     1\t{"k": 1}'
    for path in (default, "/workspace/config/cfg.json", "/mnt/session/uploads/new.txt"):
        result = await box.call("write", file_path=path, content="changed")
        assert result.is_error and "not writable" in result.text, (path, result.text)
    edit = await box.call("edit", file_path="/workspace/config/cfg.json", old_string="1", new_string="2")
    assert edit.is_error
    if mode == "bwrap":  # the sandbox's shell cannot change them either
        shell = await box.bash(f"cat {default}; echo x >> {default}; echo y > /workspace/config/cfg.json; ls")
        assert "a,b" in shell.text
        assert shell.text.count("Read-only file system") + shell.text.count("Permission denied") == 2
    assert box.host(default).read_bytes() == b"a,b\n1,2\n"


async def test_host_paths_of_the_fallback_are_understood(box: Sandbox) -> None:
    host = box.host("/workspace/x.txt")
    result = await box.call("write", file_path=str(host), content="via host path")
    assert result.text == "Wrote 13 bytes to /workspace/x.txt"


def test_glob_patterns() -> None:
    assert glob_regex("**/*.py").match("a/b/c.py")
    assert glob_regex("**/*.py").match("c.py")
    assert not glob_regex("*.py").match("a/c.py")
    assert glob_regex("src/[ab]?.txt").match("src/a1.txt")
    assert glob_regex("src/[!ab].txt").match("src/c.txt")
    assert glob_regex("{x,y}/**").match("y/z/w")
