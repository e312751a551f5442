package main

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/irqshift/irqshift/rules"
	"github.com/irqshift/irqshift/state"
)

// The man page, irqshift(8), printed by the hidden `irqshift man` (make
// install, packaging/build-deb.sh). It is roff written here, not urfave/cli's
// ToMan: the commands, their flags and examples, the global flags and the
// environment keys come from the same definitions as --help and the
// settings resolver, so none can be left out; the prose is written for
// people.

// unitBanFile is the ban file irqshift.service follows (--ban-file in
// systemd/irqshift.service.in): where CRI-O and tuned write their bans.
const unitBanFile = "/etc/sysconfig/irqbalance"

// docDir is where the Debian package installs README.md and docs/*.md,
// compressed (packaging/build-deb.sh).
const docDir = "/usr/share/doc/irqshift"

func manPage(app *cli.App) string {
	flags := indexFlags(app)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p(`.\" %s(8), printed by "%s man" from help.go and man.go: edit those.`, app.Name, app.Name)
	p(`.TH %s 8 "" "%s %s"`, app.Name, app.Name, roffText(app.Version))
	// Left-aligned, not hyphenated: paths and flag names stay whole. HY
	// too, which .EE restores.
	p(".ad l")
	p(".nr HY 0")
	p(".nh")

	p(".SH NAME")
	p(`%s \- %s`, app.Name, roffText(app.Usage))

	p(".SH SYNOPSIS")
	p(`\fB%s\fR [\fIglobal options\fR] \fIcommand\fR [\fIoptions\fR] [\fIarguments\fR]`, app.Name)
	p(".br")
	p(`\fB%s\fR [\fIcommand\fR] \fB\-\-help\fR`, app.Name)

	p(".SH DESCRIPTION")
	b.WriteString(manDescription)

	p(".SH COMMANDS")
	p("Global options may also follow the command.")
	for _, cmd := range app.VisibleCommands() {
		if cmd.Name == "help" {
			continue
		}
		p(".SS %s", roffText(cmd.Name))
		syn := fmt.Sprintf(`\fB%s %s\fR`, app.Name, roffText(cmd.Name))
		if len(visible(cmd.Flags)) > 0 {
			syn += ` [\fIoptions\fR]`
		}
		if cmd.ArgsUsage != "" {
			syn += ` \fI` + roffText(cmd.ArgsUsage) + `\fR`
		}
		p("%s", syn)
		p(".PP")
		p("%s", roffText(sentence(cmd.Usage)))
		switch cmd.Description {
		case "":
		case rulesDescription:
			p("The format of the rules is under DEVICE RULES below.")
		default:
			b.WriteString(roffParagraphs(cmd.Description))
		}
		for _, f := range visible(cmd.Flags) {
			manFlag(&b, f)
		}
		if ex := examplesOf(flags, cmd); len(ex) > 0 {
			p(".PP")
			p("Examples:")
			manExamples(&b, ex)
		}
	}

	p(".SH OPTIONS")
	p("These options apply to every command.")
	for _, f := range visible(appFlags(app)) {
		manFlag(&b, f)
	}

	// The rules' format as --help shows it, kept as written. (Its dashes
	// stay hyphens: groff prints both as "-" on a terminal.)
	b.WriteString(manSection("DEVICE RULES", rulesDescription))

	p(".SH ENVIRONMENT")
	p("A setting comes from its flag, else from the environment, else from the configuration file")
	p(`(\fB\-\-config\fR; %s on the live system), else from its default.`, roffText(DefaultConfigPath))
	p("The file holds the same \\fIKEY\\fR=\\fIvalue\\fR lines as the environment (a systemd EnvironmentFile);")
	p("a key of it that irqshift does not know is warned about, with the closest known one.")
	for _, s := range allSettings {
		text, _ := settingDoc(app, s)
		p(".TP")
		p(`.B %s`, s.key)
		p("%s", text)
	}
	for _, env := range manEnvironment(app) {
		p(".TP")
		p(".B %s", env[0])
		p("%s", env[1])
	}

	p(".SH FILES")
	for _, file := range manFiles(app) {
		p(".TP")
		p(`.I %s`, roffText(file[0]))
		p("%s", roffText(file[1]))
	}

	p(".SH EXIT STATUS")
	for _, code := range []struct {
		code int
		text string
	}{
		{exitOK, "Done."},
		{exitError, "An error: an unreadable or malformed kernel file, a write that needs root, a CPU that did not come online, " +
			"an interruption (SIGINT, SIGTERM), a state file that could not be saved, is not a regular file, " +
			"is from a newer irqshift or whose lock was held too long, a rules file with a mistake, " +
			"a second daemon on the same state, irqbalance running beside watch."},
		{exitUsage, "Bad usage, and nothing was written: an unknown command or flag, a stray argument, a value that does not parse, " +
			"a CPU that does not exist, is offline, cannot be hotplugged or is the last allowed one, " +
			"an IRQ that is not in /proc/interrupts or cannot be pinned."},
		{exitUnmovable, "Done, but some IRQs could not be moved, a movable IRQ is still on a CPU to take offline (which then stays online), " +
			"verify (or --verify) saw an IRQ fire where it should not, " +
			"or status found IRQs on CPUs they should not be on."},
	} {
		p(".TP")
		p(".B %d", code.code)
		p("%s", roffText(code.text))
	}
	p(".PP")
	p("A refused write that shows an IRQ is managed by the kernel is not a failure.")

	p(".SH SIGNALS")
	b.WriteString(manSignals)

	p(".SH JSON OUTPUT")
	p(`With \fB\-\-json\fR, a command prints one JSON document on standard output instead of its table.`)
	p("Fields are only ever added, never renamed.")
	for _, cmd := range app.VisibleCommands() {
		if !slices.ContainsFunc(cmd.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "json") }) {
			continue
		}
		p(".TP")
		p(`.B %s %s \-\-json`, app.Name, roffText(cmd.Name))
		text, ok := jsonDocs[cmd.Name]
		if !ok {
			text = "A document described in JSON.md."
		}
		p("%s", roffText(text))
	}
	p(".PP")
	p("Every field and its meaning: %s/JSON.md.gz, installed by the Debian package", roffText(docDir))
	p(`(\fImake install\fR puts JSON.md and the rest of the documentation in \fIPREFIX\fR/share/doc/irqshift).`)

	if ex := examplesOf(flags, nil); len(ex) > 0 {
		p(".SH EXAMPLES")
		manExamples(&b, ex)
	}

	p(".SH SEE ALSO")
	p(".BR irqbalance (1),")
	p(".BR lsirq (1),")
	p(".BR tuna (8),")
	p(".BR journalctl (1),")
	p(".BR systemd.exec (5)")
	p(".PP")
	p("The documentation in %s: README.md.gz, COMMANDS.md.gz, DAEMON.md.gz, RULES.md.gz, JSON.md.gz and more.", roffText(docDir))
	return b.String()
}

// manFlag is a flag as a tagged paragraph.
func manFlag(b *strings.Builder, f cli.Flag) {
	doc := flagDocOf(f)
	var names []string
	for _, n := range doc.names {
		names = append(names, `\fB`+strings.ReplaceAll(n, "-", `\-`)+`\fR`)
	}
	tag := strings.Join(names, ", ")
	if doc.arg != "" {
		tag += ` \fI` + roffText(doc.arg) + `\fR`
	}
	text := strings.TrimSuffix(doc.usage, ".") + "."
	if doc.def != "" {
		text += " Default: " + doc.def + "."
	}
	fmt.Fprintf(b, ".TP\n%s\n%s\n", tag, roffText(text))
}

// manExamples sets examples as code, each under its comment.
func manExamples(b *strings.Builder, ex []example) {
	b.WriteString(".PP\n.RS 4\n.EX\n")
	for i, e := range ex {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(roffCode("# "+e.comment) + "\n" + roffCode(e.line) + "\n")
	}
	b.WriteString(".EE\n.RE\n")
}

// settingDoc describes an environment key: as its flag says, or from
// settingDocs; ok is false when neither knows it.
func settingDoc(app *cli.App, s setting) (text string, ok bool) {
	if doc, ok := settingDocs[s.key]; ok {
		return roffText(doc), true
	}
	if s.flag != "" {
		if f, where := findFlag(app, s.flag); f != nil {
			spelled := `\fB\-\-` + strings.ReplaceAll(s.flag, "-", `\-`) + `\fR`
			if where != "" {
				spelled += " of " + roffText(where)
			}
			return "As " + spelled + ": " + roffText(strings.TrimSuffix(flagDocOf(f).usage, ".")+"."), true
		}
	}
	return "Read by the settings resolver.", false
}

// findFlag finds a flag among the global flags, then the commands'; where
// names the commands that have it ("" for a global flag).
func findFlag(app *cli.App, name string) (f cli.Flag, where string) {
	if f := flagIndex(app.Flags)["--"+name]; f != nil {
		return f, ""
	}
	var names []string
	for _, cmd := range app.Commands {
		if g := flagIndex(cmd.Flags)["--"+name]; g != nil {
			names = append(names, cmd.Name)
			if f == nil {
				f = g
			}
		}
	}
	return f, strings.Join(names, ", ")
}

// settingDocs describe the keys no flag sets.
var settingDocs = map[string]string{
	settingBannedCPUList.key: "irqbalance's variable, read as irqbalance does: a cpulist of CPUs no IRQ may be moved to " +
		`("-" bans none); added to --banned-cpus.`,
	settingBannedCPUMask.key: "irqbalance's older variable: a hexadecimal CPU mask (32-bit words separated by commas, " +
		"such as ffffffff,00000000; 0 bans none) of CPUs no IRQ may be moved to; added to --banned-cpus.",
}

// manEnvironment is the environment irqshift reads besides its settings.
func manEnvironment(app *cli.App) [][2]string {
	return [][2]string{
		{keyUnitArgs, "Read by irqshift.service only, from " + roffText(DefaultConfigPath) + ": more arguments of " +
			`\fB` + app.Name + ` watch\fR, for flags that have no key of their own (such as \fB\-\-coexist\fR). A change needs a restart.`},
		{"NOTIFY_SOCKET", "Set by systemd for a Type=notify service: watch reports READY=1 after its first settle, " +
			"STOPPING=1, and WATCHDOG=1 while WATCHDOG_USEC asks for it."},
		{"WATCHDOG_USEC", "Set by systemd (WatchdogSec=): watch sends WATCHDOG=1 every half of it."},
		{"JOURNAL_STREAM", "Set by systemd when standard error goes to the journal: log lines carry no timestamp of their own."},
		{"GOMAXPROCS", "The Go runtime's processor count. On a machine with more than 4 CPUs, watch starts itself again " +
			"(same PID) with GOMAXPROCS=4, which keeps the idle daemon small; a value set here is kept."},
	}
}

// manFiles are the files irqshift reads and writes.
func manFiles(app *cli.App) [][2]string {
	return [][2]string{
		{DefaultConfigPath, "The configuration file of the service and of the commands on the live system (--config): " +
			"KEY=value lines of the keys under ENVIRONMENT. Read again on SIGHUP."},
		{state.DefaultPath, "The state file (--state): pins, drained CPUs and why, IRQs the kernel refused to move, irqshift's own last masks. " +
			"Shared by the commands and the daemon; beside it, STATE.lock (the lock every writer holds), " +
			"STATE.daemon (held by the running daemon) and STATE.bad (a damaged file kept aside). Kept until reboot."},
		{DefaultRulesDir, "The device rules (--rules): *.toml files read in name order; see DEVICE RULES. The daemon follows changes at once."},
		{DefaultRulesDir + "/" + rules.PinsFile, "The rules " + app.Name + " pin --persist writes and unpin --persist removes."},
		{unitBanFile, "The irqbalance ban file irqshift.service follows (--ban-file): CRI-O " +
			"(irq-load-balancing.crio.io: disable) and tuned write IRQBALANCE_BANNED_CPUS and IRQBALANCE_BANNED_CPULIST there. " +
			"Its CPUs are drained the moment it changes; it may not exist yet."},
		{"/proc/irq/default_smp_affinity", "With --ban-default-affinity, the CPUs missing from it are banned (CRI-O edits it too)."},
		{"cpuset.cpus.isolated", "Of the cgroup v2 root, found through /proc/self/mountinfo: the CPUs of isolated cpuset partitions, " +
			"banned like isolcpus= ones unless --include-isolated (--no-partitions stops following them)."},
		{"/proc/interrupts", "The IRQs, their chips, actions and counts per CPU."},
		{"/proc/irq/N/smp_affinity_list", "Each IRQ's mask, which irqshift writes; effective_affinity_list, read back, says where it fires."},
		{"/sys/devices/system/cpu/cpuN/online", "Written by offline and online; the uevents of CPU hotplug wake the daemon."},
		{"/usr/lib/systemd/system/irqshift.service", "The service: irqshift watch, with the state in " + state.DefaultPath + "."},
		{docDir, "README.md and the documentation (COMMANDS.md, DAEMON.md, RULES.md, JSON.md, ...), compressed."},
	}
}

// jsonDocs say in a sentence what each command's JSON holds.
var jsonDocs = map[string]string{
	"list": `{"cpus", "irqs"}: the CPUs (online, allowed, banned and by what, drained and why, NUMA nodes) ` +
		"and every IRQ: number, chip, actions, counts, rate, affinity, effective CPUs, class, why it is not movable, pin, node, device, driver, rule.",
	"rules": `{"dir", "rules", "problems"}: each rule with its file, line, globs and effect, the IRQs it places now and their CPUs; each problem.`,
	"rebalance": `The plan with --dry-run, {"moves", "skipped"}; else also "results", one per write (status moved, narrowed, pending, unmovable, vanished or failed), ` +
		`a "summary" of them, and "verify" with --verify.`,
	"drain":   "As rebalance.",
	"undrain": "As rebalance.",
	"online":  "As rebalance.",
	"pin":     `As rebalance; with --persist also "persisted", the rule and its file.`,
	"offline": `As rebalance, and "cpus", "offlined", "left_behind" (movable IRQs still on the CPUs) and "rebalanced".`,
	"verify":  `{"method", "coarse", "duration_seconds", "irqs"}: for each IRQ the CPUs expected, the count fired on each CPU and a verdict (ok, misrouted, on-offline-cpu, silent).`,
	"top":     "One object a line and refresh: the window, the method, the rate of all, each CPU's rate and marks, each IRQ's rates.",
	"version": `{"version", "go", "os", "arch"}.`,
	"status":  "The daemon, the last settle, drained and banned CPUs, pins, rules and the IRQs on CPUs they should not be on.",
}

const manDescription = `.B irqshift
keeps device interrupts (IRQs) off CPUs that are going offline, and spreads them round\-robin,
one CPU per IRQ, over the online CPUs they may use.
It is written for ARM64 servers and virtual machines (GICv3 with ITS, GICv2) and runs on any Linux
with /proc/irq.
.PP
.B CPU hotplug.
When a CPU goes offline the kernel moves its IRQs itself: every wired interrupt lands on the lowest
online CPU, the masks the administrator set are overwritten, and nothing moves back when the CPU
returns.
.B irqshift offline
drains CPUs, checks that no movable IRQ is left on them, then takes them offline;
.B irqshift online
brings them back and gives them their share again.
The daemon repairs what the kernel did within milliseconds of every hotplug event, whoever took the
CPU offline.
.PP
.B Drained and banned CPUs.
.B irqshift drain
moves every movable IRQ off CPUs that stay online, and keeps them off until
.BR "irqshift undrain" .
IRQs go to the allowed CPUs: the online ones, less the banned (\fB\-\-banned\-cpus\fR, isolcpus=,
nohz_full=, isolated cgroup v2 cpuset partitions, irqbalance ban files) and the drained.
Per\-CPU IRQs, IRQs the kernel manages and IRQs without an action are never touched.
.PP
.B Pins.
A mask set with
.B irqshift pin
or written by hand to /proc/irq/\fIN\fR/smp_affinity_list is the operator's pin: irqshift keeps it,
and puts it back when the kernel broke it on an offline and its CPUs return.
Pins last until reboot;
.B pin \-\-persist
and device rules keep them across reboots.
.PP
.B Device rules.
Rules in /etc/irqshift/rules.d place the IRQs of a device, matched by PCI address, driver or
action name, whatever numbers they get: on given CPUs, on a NUMA node, or nowhere irqshift would
move them.
See DEVICE RULES.
.PP
.B NUMA homes.
Each IRQ stays on its device's NUMA node while that node has an allowed CPU
(\fB\-\-numa local\fR, the default).
.PP
.B Load.
With \fB\-\-balance load\fR, the default, irqshift first measures each IRQ's interrupt rate
(for a second, \fB\-\-sample\fR) and, keeping the count of IRQs per CPU within one, puts busy IRQs
on distinct CPUs and keeps the busiest CPU's rate low.
The daemon measures rates between its periodic checks.
.PP
.B Verification.
.B irqshift verify
and \fB\-\-verify\fR prove where IRQs really fire, with an eBPF program on the
irq:irq_handler_entry tracepoint (or, without eBPF, from /proc/interrupts count deltas), and the
daemon confirms its moves so after every settle.
.PP
.B The daemon.
.BR "irqshift watch" ,
run by irqshift.service, settles at start, then follows CPU hotplug uevents, the state file,
the rules directory, ban files and cpuset partitions, and applies its configuration anew on
SIGHUP.
It reports to systemd (Type=notify, the watchdog), refuses to run beside irqbalance (unless
\fB\-\-coexist\fR) and can serve Prometheus metrics (\fB\-\-metrics\-address\fR).
.PP
The operator's intent (pins, drained CPUs) lives in the state file (\fB\-\-state\fR), shared by
the commands and the daemon under a lock.
The commands that write (rebalance, drain, undrain, offline, online, pin, unpin, watch) need root;
\fB\-\-dry\-run\fR shows a plan without writing.
list, rules, verify and top only read; verify, \fB\-\-verify\fR and \fBtop \-\-ebpf\fR load an eBPF
program, which needs CAP_BPF and CAP_PERFMON.
`

const manSignals = `.TP
.B SIGHUP
Reload:
.B irqshift watch
reads the configuration file and the environment again and applies the settings of its plans
anew (banned CPUs and IRQs, \fB\-\-include\-isolated\fR, \fB\-\-include\-pinned\fR, NUMA, balance,
learned pins, the rules directory), forgets what it cached of the CPUs, and settles.
What a flag set stays; \fB\-\-check\-interval\fR, \fB\-\-metrics\-address\fR, \fB\-\-no\-verify\fR
and \fB\-\-state\fR need a restart.
A configuration with a mistake is logged and the old one kept.
.B systemctl reload irqshift
sends it.
It also ends the live view of
.BR "irqshift top" .
.TP
.BR SIGTERM ", " SIGINT
Stop:
.B irqshift watch
stops (STOPPING=1 to systemd), exit 0.
A writing command stops before its next write, reports how many planned writes were done and not,
and exits 1: an interrupted drain records nothing, and offline takes no CPU offline unless its
drain completed.
.B irqshift top
ends, exit 0, with the terminal restored.
`

// sentence makes a usage a sentence: a capital and a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// roffText escapes text for roff: backslashes; the dashes of flags, paths,
// numbers and other technical words (a minus, \-), not those of words
// such as round-robin (a hyphen); and a line starting with a control
// character.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		words := strings.Split(line, " ")
		for j, w := range words {
			if strings.Contains(w, "-") && technical(w) {
				words[j] = strings.ReplaceAll(w, "-", `\-`)
			}
		}
		line = strings.Join(words, " ")
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		lines[i] = line
	}
	return strings.Join(lines, "\n")
}

// technical tells a flag, path, number, glob or name with a dash from a
// hyphenated word.
func technical(w string) bool {
	w = strings.TrimLeft(w, "(\"'`")
	return strings.HasPrefix(w, "-") || strings.ContainsAny(w, "0123456789/._=*:")
}

// roffCode escapes a line of code for .EX: every character as typed.
func roffCode(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`, "'", `\(aq`, "`", `\(ga`, "~", `\(ti`, "^", `\(ha`).Replace(s)
	if strings.HasPrefix(s, ".") {
		s = `\&` + s
	}
	return s
}

// roffParagraphs sets a command's description: paragraphs of text, and
// its indented lines as code.
func roffParagraphs(text string) string {
	var b strings.Builder
	var para []string
	var code []string
	flush := func() {
		if len(para) > 0 {
			b.WriteString(".PP\n" + roffText(strings.Join(para, "\n")) + "\n")
			para = nil
		}
		if len(code) > 0 {
			b.WriteString(".PP\n.RS 4\n.EX\n")
			for _, line := range code {
				b.WriteString(roffCode(line) + "\n")
			}
			b.WriteString(".EE\n.RE\n")
			code = nil
		}
	}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, " "):
			if len(para) > 0 {
				flush()
			}
			code = append(code, strings.TrimSpace(line))
		default:
			if len(code) > 0 {
				flush()
			}
			para = append(para, line)
		}
	}
	flush()
	return b.String()
}
