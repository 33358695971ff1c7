package topology

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Load parses and validates data, a topology file in heketi's schema as
// JSON or YAML (chosen by the extension of name, else by content). name is
// used in diagnostics. err != nil iff any Error-level diagnostic was found;
// its message lists them all. diags holds every diagnostic, warnings too, in
// file order. The Topology is returned even with errors (best effort), so
// callers can show what was understood.
func Load(name string, data []byte) (*Topology, []Diagnostic, error) {
	f := detectFormat(name, data)
	root, err := parseTree(f, data)
	if err != nil {
		var se *syntaxError
		if !errors.As(err, &se) {
			se = &syntaxError{msg: err.Error()}
		}
		diags := []Diagnostic{{File: name, Line: se.line, Column: se.col, Severity: Error, Message: se.msg}}
		return &Topology{}, diags, &ValidationError{File: name, Diagnostics: diags}
	}
	d := &decoder{file: name, manage: map[string]seen{}, storage: map[string]seen{}}
	t := d.topology(root)
	sortDiagnostics(d.diags)
	if HasErrors(d.diags) {
		var errs []Diagnostic
		for _, x := range d.diags {
			if x.Severity == Error {
				errs = append(errs, x)
			}
		}
		return t, d.diags, &ValidationError{File: name, Diagnostics: errs}
	}
	return t, d.diags, nil
}

// maxFileSize bounds what ReadFile reads: a topology of thousands of nodes
// is well under a megabyte.
const maxFileSize = 64 << 20

// ReadFile is Load on a file; path "-" reads stdin (named "<stdin>" in
// diagnostics).
func ReadFile(path string, stdin io.Reader) (*Topology, []Diagnostic, error) {
	var (
		data []byte
		err  error
		name = path
	)
	if path == "-" {
		name = "<stdin>"
		if stdin == nil {
			return nil, nil, errors.New("read topology from stdin: no standard input")
		}
		data, err = io.ReadAll(io.LimitReader(stdin, maxFileSize+1))
	} else {
		var f *os.File
		f, err = os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("read topology file: %w", err)
		}
		defer f.Close()
		data, err = io.ReadAll(io.LimitReader(f, maxFileSize+1))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read topology file %s: %w", name, err)
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("topology file %s is larger than %d MiB", name, maxFileSize>>20)
	}
	return Load(name, data)
}
