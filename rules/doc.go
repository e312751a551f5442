// Package rules reads the operator's device rules: what irqshift should do
// with the IRQs of a device, said of the device rather than of IRQ
// numbers, which change from boot to boot.
//
// The rules are in TOML files in a rules directory, /etc/irqshift/rules.d
// by default. Every *.toml file there is read, in name order (names that
// start with '.' and subdirectories are skipped); a missing directory
// holds no rules. Each file holds [[rule]] tables:
//
//	# The NIC's completion queues on CPUs 8-15, and nothing else there.
//	[[rule]]
//	name = "nic-queues"
//	device = "0000:01:00.*"   # glob on the device's name
//	actions = "mlx5_comp*"    # glob on any of the IRQ's action names
//	cpus = "8-15"             # a cpulist
//	exclusive = true          # IRQs this rule does not match stay off 8-15
//
//	[[rule]]
//	name = "rng"
//	driver = "virtio_rng"     # glob on the bound driver's name
//	cpus = "3"
//
//	[[rule]]
//	name = "leave-fpga"
//	chip = "GICv3"            # glob on the interrupt chip's name
//	actions = "fpga*"
//	ignore = true             # irqshift never touches these IRQs
//
//	[[rule]]
//	name = "nvme-any-node"
//	driver = "nvme"
//	node = "ignore"           # "local" (the default), "ignore" or a number: node = 1
//
// The keys of a rule:
//
//   - name (required): unique across all the files of the directory; 1 to
//     64 letters, digits and - _ . : @, so that it needs no quoting where
//     it is shown.
//   - device, driver, actions, chip: globs in path.Match syntax ('*', '?',
//     '[a-z]', '\' escapes; '*' does not match '/'). A rule must give
//     device, driver or actions: chip alone would catch the IRQs of every
//     device behind one interrupt controller. Every key a rule gives must
//     match for the rule to match an IRQ; actions matches when any of the
//     IRQ's action names does.
//     An IRQ whose device, driver or chip is unknown, or that has no
//     actions, matches no rule that gives that key, not even with "*".
//   - cpus: a cpulist ("0-3,8", "0-15:2/4"), not empty.
//   - exclusive = true: no IRQ that this rule does not match is placed on
//     its cpus. It needs cpus.
//   - ignore = true: irqshift never touches the matched IRQs. It cannot be
//     combined with cpus, exclusive or node.
//   - node: "local" keeps the IRQ on its device's NUMA node, which is what
//     happens when a rule gives no node; "ignore" places it without regard
//     to nodes; a number (node = 1, without quotes) places it on that node.
//
// A rule must do something: give cpus, node or ignore. Unknown keys and
// tables are errors, so that a mistyped key is not silently ignored. For
// each IRQ the first rule that matches it applies, in file-name order and
// then in the order of each file.
//
// Errors name the file and the line: of the TOML syntax error, else of
// the key at fault, else of the rule's [[rule]] line, as in
//
//	/etc/irqshift/rules.d/10-nic.toml:7: rule "nic": cpus "8-x": bad CPU number "x"
//
// and wrap ErrRules.
//
// `irqshift pin --persist` keeps its pins as rules in PinsFile
// (00-pins.toml) of the same directory, read before the operator's files
// so that an explicit pin wins. irqshift owns that file: AddPin and
// RemovePin rewrite it whole, and refuse to touch one that irqshift did
// not write.
//
// The package does no I/O but in the rules directory; it knows nothing of
// /proc or /sys: the caller gives each IRQ's Identity.
package rules
