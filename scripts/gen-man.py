#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Generate nvlend's manual pages from the texts they document.

    scripts/gen-man.py BUILD_DIR OUT_DIR

writes, in man(7) format:
    nvlendd.8       from `nvlendd --help`
    nvlend.8        from `nvlend --help` and every command's `--help`
    nvlend-perf.1   from `nvlend-perf --help`
    libnvlend.3 and one libnvlend-GROUP.3 per function group of the public
                    headers (include/nvlend/*.h: the "---- group ----"
                    markers, the doxygen comments above each declaration)
and copies docs/man/*.[1-8] (pages with no other source, in mdoc).

There is one text per page: the --help texts and header comments are the
source, so a page can never disagree with what the program prints. The help
texts follow one layout (upper-case section names at column 0, bodies
indented four spaces, option lists as TAG<two or more spaces>TEXT with
deeper-indented continuations), which this script relies on and checks:
anything it cannot place is an error, not a silently odd page.
"""
import datetime
import os
import re
import shutil
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIST_SECTIONS = {"OPTIONS", "GLOBAL OPTIONS", "COMMANDS", "FILES", "ENVIRONMENT"}
VERBATIM_SECTIONS = {"SYNOPSIS", "EXAMPLE", "EXAMPLES"}


def esc(text):
    """Escape running text for man(7)."""
    text = text.replace("\\", "\\e")
    text = text.replace("-", "\\-")
    return text


def line_out(text, width=78):
    """Running text as input lines of at most `width` bytes (mandoc's style
    check wants 80), none of which can be read as a request."""
    return wrap_escaped(esc(text), width)


def wrap_escaped(text, width=78):
    """wrap already escaped text (see line_out)."""
    words = text.split(" ")
    lines, cur = [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = cur + " " + w if cur else w
    lines.append(cur)
    return "\n".join("\\&" + l if l.startswith((".", "'")) else l for l in lines)


def verbatim_out(text):
    """A line of a .nf block: kept whole, escaped, never a request."""
    text = esc(text)
    return "\\&" + text if text.startswith((".", "'")) else text


def version(build):
    out = subprocess.run([os.path.join(build, "bin", "nvlendd"), "--version"],
                         capture_output=True, text=True).stdout.split()
    return out[-1] if out else "unknown"


def page_date():
    # reproducible: the date of the last commit when there is one
    try:
        ts = subprocess.run(["git", "-C", TOP, "log", "-1", "--format=%ct"],
                            capture_output=True, text=True).stdout.strip()
        if ts:
            return datetime.datetime.utcfromtimestamp(int(ts)).strftime("%Y-%m-%d")
    except OSError:
        pass
    return datetime.date.today().isoformat()


def parse_help(text, where):
    """[(section, [lines])] from a help text in the house layout."""
    sections = []
    for raw in text.splitlines():
        if raw and not raw[0].isspace():
            if not re.fullmatch(r"[A-Z][A-Z /-]*", raw.strip()):
                raise SystemExit("%s: line at column 0 is not a section name: %r" % (where, raw))
            sections.append((raw.strip(), []))
        elif sections:
            sections[-1][1].append(raw.rstrip())
        elif raw.strip():
            raise SystemExit("%s: text before the first section: %r" % (where, raw))
    return sections


def indent_of(line):
    return len(line) - len(line.lstrip(" "))


def render_verbatim(lines, out):
    body = [l[4:] if l.startswith("    ") else l.lstrip() for l in lines]
    while body and not body[-1].strip():
        body.pop()
    out.append(".nf")
    out.append(".RS 4")
    for l in body:
        out.append(verbatim_out(l) if l.strip() else "")
    out.append(".RE")
    out.append(".fi")


def render_list(lines, out, where):
    """TAG  TEXT entries with continuations; blank lines end an entry."""
    entries = []
    tag_col = None
    for l in lines:
        if not l.strip():
            continue
        ind = indent_of(l)
        s = l.strip()
        m = re.match(r"(\S(?:.*?\S)?)(?: {2,}(.*))?$", s)
        if ind == 4 or (entries and tag_col is not None and ind < tag_col and ind <= 8):
            tag, txt = m.group(1), m.group(2) or ""
            # a single-spaced tag that runs into its text: options look like
            # "-s, --socket SOCKET" and need the two-space gap to the text
            entries.append([tag, [txt] if txt else []])
            if txt:
                tag_col = ind + s.index(txt)
        elif entries:
            entries[-1][1].append(s)
        else:
            raise SystemExit("%s: list text before the first entry: %r" % (where, l))
    for tag, txt in entries:
        out.append(".TP")
        out.append("\\fB" + esc(tag) + "\\fR")
        text = " ".join(t for t in txt if t)
        out.append(line_out(text) if text else "\\&")


def render_prose(lines, out):
    """Paragraphs; lines indented deeper than the body are kept as they are."""
    para, block = [], []

    def flush_para():
        if para:
            out.append(line_out(" ".join(para)))
            para.clear()

    def flush_block():
        if block:
            render_verbatim(["    " + b for b in block], out)
            block.clear()

    first = True
    for l in lines:
        if not l.strip():
            flush_para()
            flush_block()
            first = True
            continue
        if indent_of(l) > 4:
            flush_para()
            block.append(l[4:])
            continue
        flush_block()
        if first and out and out[-1] != ".SH" and not out[-1].startswith(".SH") \
                and not out[-1].startswith(".SS"):
            out.append(".PP")
        first = False
        para.append(l.strip())
    flush_para()
    flush_block()


def render_sections(sections, out, where, skip=()):
    for name, lines in sections:
        if name in skip:
            continue
        out.append('.SH "%s"' % name)
        if name in VERBATIM_SECTIONS:
            render_verbatim(lines, out)
        elif name in LIST_SECTIONS:
            render_list(lines, out, where)
        else:
            render_prose(lines, out)


def name_line(sections, where):
    for name, lines in sections:
        if name == "NAME":
            text = " ".join(l.strip() for l in lines if l.strip())
            if " - " not in text:
                raise SystemExit("%s: NAME has no ' - '" % where)
            prog, desc = text.split(" - ", 1)
            return prog.strip(), desc.strip()
    raise SystemExit("%s: no NAME section" % where)


def header(title, sect, ver, date):
    return ['.\\" Generated by scripts/gen-man.py from the program\'s --help text; do not edit.',
            '.TH "%s" "%s" "%s" "nvlend %s" "nvlend"' % (title.upper(), sect, date, ver)]


def help_text(argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("%s exited %d: %s" % (" ".join(argv), p.returncode, p.stderr))
    return p.stdout


def program_page(binary, sect, ver, date, extra=None):
    where = os.path.basename(binary) + " --help"
    secs = parse_help(help_text([binary, "--help"]), where)
    prog, desc = name_line(secs, where)
    out = header(prog, sect, ver, date)
    out += [".SH NAME", wrap_escaped("%s \\- %s" % (esc(prog), esc(desc)))]
    render_sections(secs, out, where, skip=("NAME",))
    if extra:
        extra(out)
    return prog, out


def cli_commands(nvlend):
    secs = dict(parse_help(help_text([nvlend, "--help"]), "nvlend --help"))
    cmds = []
    for l in secs.get("COMMANDS", []):
        m = re.match(r"\s{4}(\S.*?\S)\s{2,}\S", l)
        if m:
            cmds.append(m.group(1))
    if not cmds:
        raise SystemExit("nvlend --help lists no COMMANDS")
    return cmds


def cli_command_section(nvlend, cmd, out):
    where = "nvlend %s --help" % cmd
    secs = parse_help(help_text([nvlend] + cmd.split() + ["--help"]), where)
    prog, desc = name_line(secs, where)
    out.append('.SS "%s"' % esc(prog))
    out.append(line_out(desc[0].upper() + desc[1:] + "."))
    for name, lines in secs:
        if name == "NAME":
            continue
        out.append(".PP")
        out.append("\\fI" + esc(name.capitalize()) + "\\fR")
        if name in VERBATIM_SECTIONS:
            render_verbatim(lines, out)
        elif name in LIST_SECTIONS:
            out.append(".RS 4")
            render_list(lines, out, where)
            out.append(".RE")
        else:
            out.append(".RS 4")
            render_prose(lines, out)
            out.append(".RE")


# ---- libnvlend(3) from the public headers ----------------------------------

GROUP_RE = re.compile(r"^/\* -{2,} (.+?) -{2,} \*/\s*$")
# headers without "---- group ----" markers form one group each
HEADER_GROUPS = {"brick.h": "brick client", "rpc_client.h": "RPC client"}


def header_groups(path):
    """[(group, [(doc, decl)])] from one public header."""
    text = open(path).read()
    groups = []
    if not GROUP_RE.search(text.replace("\n", "\n\n")) and \
            not any(GROUP_RE.match(l) for l in text.splitlines()):
        groups.append((HEADER_GROUPS.get(os.path.basename(path),
                                         os.path.basename(path)[:-2]), []))
    doc = None
    decl = []
    depth = 0
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        l = lines[i]
        m = GROUP_RE.match(l)
        if m:
            groups.append((m.group(1), []))
            doc = None
            i += 1
            continue
        if l.lstrip().startswith("/**") and not l.lstrip().startswith("/**<") and depth == 0:
            body = []
            while True:
                body.append(lines[i])
                if "*/" in lines[i]:
                    break
                i += 1
            doc = clean_doc(body)
            i += 1
            continue
        if groups and depth == 0 and re.match(r"^(struct|enum|union|typedef|static inline|[a-z_].*\()", l) \
                and not l.startswith("#"):
            decl = [l]
            opens = l.count("{") - l.count("}")
            braced = opens > 0
            while not (opens == 0 and (decl[-1].rstrip().endswith(";") or
                                       (braced and "}" in decl[-1]))):
                i += 1
                decl.append(lines[i])
                opens += lines[i].count("{") - lines[i].count("}")
                braced = braced or "{" in lines[i]
            text = "\n".join(decl)
            if decl[0].startswith("static inline"):
                # an inline function: its prototype, not its body
                text = re.sub(r"^static inline\s*\n?", "static inline ", text)
                text = text.split("{")[0].rstrip() + ";"
            groups[-1][1].append((doc, text))
            doc = None
        i += 1
    return [g for g in groups if g[1]]


def clean_doc(body):
    out = []
    for l in body:
        s = l.strip()
        s = re.sub(r"^/\*\*<?", "", s)
        s = re.sub(r"\*/$", "", s)
        s = re.sub(r"^\* ?", "", s)
        out.append(s.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def decl_name(decl):
    m = re.search(r"\b(nvl_[a-z0-9_]+)\s*\(", decl)
    if m:
        return m.group(1)
    m = re.match(r"(struct|enum|union)\s+(\w+)", decl)
    return "%s %s" % (m.group(1), m.group(2)) if m else decl.split("\n")[0]


def slug(group):
    """Page name part: the group's words before any parenthesis."""
    return re.sub(r"[^a-z0-9]+", "-", group.split("(")[0].lower()).strip("-")


def render_doc(doc, out):
    """Doxygen text: \\return and \\param become labelled paragraphs."""
    para = []
    code = False

    def flush():
        if para:
            out.append(line_out(" ".join(para)))
            para.clear()

    for l in doc:
        if l.strip() == "\\code":
            flush()
            out.append(".nf")
            code = True
            continue
        if l.strip() == "\\endcode":
            out.append(".fi")
            code = False
            continue
        if code:
            out.append(verbatim_out(l) if l.strip() else "")
            continue
        if "\\return" in l and not l.strip().startswith("\\return"):
            # a one-line comment: "What it does. \return 0, -EINVAL, ..."
            before, after = l.split("\\return", 1)
            para.append(before.strip())
            l = "\\return" + after
        m = re.match(r"\\(return|param|brief)\s*(\S*)\s*(.*)", l.strip())
        if m:
            flush()
            if m.group(1) == "return":
                out.append(".PP")
                out.append("\\fBReturns\\fR " + line_out((m.group(2) + " " + m.group(3)).strip()))
            elif m.group(1) == "param":
                out.append(".PP")
                out.append("\\fI" + esc(m.group(2)) + "\\fR: " + line_out(m.group(3)))
            else:
                para.append((m.group(2) + " " + m.group(3)).strip())
            continue
        if not l.strip():
            flush()
            out.append(".PP")
            continue
        para.append(l.strip())
    flush()


def lib_pages(ver, date):
    pages = {}
    headers = sorted(os.path.join(TOP, "include", "nvlend", h)
                     for h in os.listdir(os.path.join(TOP, "include", "nvlend"))
                     if h.endswith(".h"))
    index = []
    for h in headers:
        for group, items in header_groups(h):
            name = "libnvlend-" + slug(group)
            if name in pages:
                name += "-" + slug(os.path.basename(h)[:-2])
            out = header(name, "3", ver, date)
            funcs = [decl_name(d) for _, d in items if "(" in d.split("\n")[0]]
            out += [".SH NAME", wrap_escaped("%s \\- libnvlend: %s" % (esc(name), esc(group)))]
            out += [".SH SYNOPSIS", ".nf", "\\fB#include <nvlend/%s>\\fR" % os.path.basename(h), ""]
            for _, d in items:
                for l in d.split("\n"):
                    out.append(verbatim_out(l.replace("\t", "        ")) if l.strip() else "")
                out.append("")
            out += [".fi", ".PP", "Link with \\fI\\-lnvlend\\fR (pkg\\-config \\fInvlend\\fR)."]
            out.append(".SH DESCRIPTION")
            for doc, d in items:
                out.append('.SS "%s"' % esc(decl_name(d)))
                if doc:
                    render_doc(doc, out)
                else:
                    out.append("(no description in the header)")
            out += [".SH SEE ALSO", "\\fBlibnvlend\\fR(3)"]
            pages[name] = out
            index.append((name, group, funcs))
    out = header("libnvlend", "3", ver, date)
    out += [".SH NAME", "libnvlend \\- use NVMe namespaces and bricks served by nvlendd from a process"]
    out += [".SH SYNOPSIS", ".nf", "\\fB#include <nvlend/nvlend.h>\\fR",
            "\\fB#include <nvlend/brick.h>\\fR", "\\fB#include <nvlend/rpc_client.h>\\fR", ".fi",
            ".PP", "cc ... $(pkg\\-config \\-\\-cflags \\-\\-libs nvlend)"]
    out.append(".SH DESCRIPTION")
    intro = clean_doc(file_comment(os.path.join(TOP, "include", "nvlend", "nvlend.h")))
    render_doc([l for l in intro if not l.startswith("\\file")], out)
    out.append(".SH FUNCTION GROUPS")
    for name, group, funcs in index:
        out.append(".TP")
        out.append("\\fB%s\\fR(3)" % esc(name))
        out.append(line_out(group[0].upper() + group[1:] + ": " + ", ".join(funcs) if funcs else group))
    out += [".SH SEE ALSO", ", ".join("\\fB%s\\fR(3)" % esc(n) for n, _, _ in index) +
            ", \\fBnvlend\\fR(8), \\fBnvlendd\\fR(8)"]
    pages["libnvlend"] = out
    return pages


def file_comment(path):
    lines = open(path).read().splitlines()
    body, inside = [], False
    for l in lines:
        if l.startswith("/**") and not inside:
            inside = True
        if inside:
            body.append(l)
            if "*/" in l:
                break
    return body


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    build, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    ver, date = version(build), page_date()
    binp = lambda n: os.path.join(build, "bin", n)
    written = []

    def write(name, sect, lines):
        path = os.path.join(outdir, "%s.%s" % (name, sect))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        written.append(path)

    _, page = program_page(binp("nvlendd"), "8", ver, date,
                           lambda out: out.extend([".SH SEE ALSO",
                                                   "\\fBnvlend\\fR(8), \\fBnvlend\\-perf\\fR(1), "
                                                   "\\fBnvlend.json\\fR(5), \\fBlibnvlend\\fR(3)"]))
    write("nvlendd", "8", page)

    def cli_extra(out):
        out.append('.SH "COMMAND REFERENCE"')
        out.append("Every command also prints this text with \\fB\\-\\-help\\fR.")
        for cmd in cli_commands(binp("nvlend")):
            cli_command_section(binp("nvlend"), cmd, out)
        out += [".SH SEE ALSO", "\\fBnvlendd\\fR(8), \\fBnvlend\\-perf\\fR(1), \\fBnvlend.json\\fR(5)"]
    _, page = program_page(binp("nvlend"), "8", ver, date, cli_extra)
    write("nvlend", "8", page)
    _, page = program_page(binp("nvlend-perf"), "1", ver, date,
                           lambda out: out.extend([".SH SEE ALSO", "\\fBfio\\fR(1), \\fBnvlend\\fR(8)"]))
    write("nvlend-perf", "1", page)
    for name, lines in lib_pages(ver, date).items():
        write(name, "3", lines)
    mandir = os.path.join(TOP, "docs", "man")
    if os.path.isdir(mandir):
        for f in sorted(os.listdir(mandir)):
            if re.search(r"\.[1-8]$", f):
                shutil.copy(os.path.join(mandir, f), os.path.join(outdir, f))
                written.append(os.path.join(outdir, f))
    for w in written:
        print(w)


if __name__ == "__main__":
    main()
