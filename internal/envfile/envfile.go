// Package envfile reads systemd EnvironmentFiles: KEY=VALUE lines, blank
// lines and # or ; comments, values optionally in single or double quotes.
// irqshift reads its --config file and irqbalance's ban file
// (/etc/sysconfig/irqbalance) with it.
//
// It is a leaf: it imports nothing of irqshift's but the other leaves
// (internal/regfile, internal/quote), so that the command line, the core
// (affinity) and the daemon share it without importing one another.
package envfile

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/irqshift/irqshift/internal/quote"
	"github.com/irqshift/irqshift/internal/regfile"
)

// MaxSize bounds what Read reads. The files it reads (the --config file,
// irqbalance's /etc/sysconfig/irqbalance) are a few lines; the bound keeps
// a mistaken path from growing the process.
const MaxSize = 1 << 20

// Read reads the EnvironmentFile at path. It is read as regfile.Read does,
// up to MaxSize: a FIFO or a device given as the file must neither hang
// the command nor grow it.
func Read(path string) (map[string]string, error) {
	data, err := regfile.Read(path, MaxSize)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses the content of an EnvironmentFile named name (for errors),
// as Read does.
func Parse(name string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	scan := bufio.NewScanner(bytes.NewReader(data))
	scan.Buffer(nil, 1<<20)
	for n := 1; scan.Scan(); n++ {
		line := strings.TrimSpace(scan.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(strings.TrimPrefix(key, "export "))
		if !ok || key == "" {
			return nil, fmt.Errorf("%s:%d: not KEY=VALUE: %s", name, n, quote.Quote(line))
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out[key] = value
	}
	if err := scan.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
