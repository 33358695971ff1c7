package topology

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Severity says whether a Diagnostic stops the file from loading.
type Severity int

const (
	// Error means the file is refused: nothing is sent to heketi.
	Error Severity = iota
	// Warning means the file loads, but probably not as the user meant.
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// MarshalText writes "error" or "warning" (for -o json reports).
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Diagnostic is one problem found in a topology file.
type Diagnostic struct {
	File         string
	Line, Column int // 1-based; 0 when unknown
	// Path is the field the problem is in, e.g. clusters[0].nodes[1].node.zone.
	Path     string
	Severity Severity // Error or Warning
	// Message says what is wrong and what is expected.
	Message string
}

// MarshalJSON writes the diagnostic with lower-case keys.
func (d Diagnostic) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		File     string   `json:"file,omitempty"`
		Line     int      `json:"line,omitempty"`
		Column   int      `json:"column,omitempty"`
		Path     string   `json:"path,omitempty"`
		Severity Severity `json:"severity"`
		Message  string   `json:"message"`
	}{d.File, d.Line, d.Column, d.Path, d.Severity, d.Message})
}

// String formats the diagnostic the way compilers do:
//
//	topology.json:12:9: clusters[0].nodes[1].node.zone: zone must be ≥ 1, got 0
//
// Warnings say so after the position.
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		b.WriteString(d.File)
		if d.Line > 0 {
			fmt.Fprintf(&b, ":%d", d.Line)
			if d.Column > 0 {
				fmt.Fprintf(&b, ":%d", d.Column)
			}
		}
		b.WriteString(": ")
	} else if d.Line > 0 {
		fmt.Fprintf(&b, "line %d", d.Line)
		if d.Column > 0 {
			fmt.Fprintf(&b, ":%d", d.Column)
		}
		b.WriteString(": ")
	}
	if d.Severity == Warning {
		b.WriteString("warning: ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// ValidationError is the error Load returns when the file has Error-level
// diagnostics. Its message lists every one of them.
type ValidationError struct {
	File        string
	Diagnostics []Diagnostic // the Error-level ones, in file order
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	name := e.File
	if name == "" {
		name = "topology"
	}
	n := len(e.Diagnostics)
	if n == 1 {
		fmt.Fprintf(&b, "%s has 1 error:", name)
	} else {
		fmt.Fprintf(&b, "%s has %d errors:", name, n)
	}
	for _, d := range e.Diagnostics {
		b.WriteString("\n  ")
		b.WriteString(d.String())
	}
	return b.String()
}

// HasErrors reports whether any diagnostic is an Error.
func HasErrors(diags []Diagnostic) bool {
	for _, d := range diags {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// sortDiagnostics orders diagnostics by position, errors before warnings at
// the same position, keeping discovery order otherwise.
func sortDiagnostics(diags []Diagnostic) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i], diags[j]
		if a.Line != b.Line {
			// Unknown positions (0) go last.
			if a.Line == 0 || b.Line == 0 {
				return b.Line == 0 && a.Line != 0
			}
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Severity < b.Severity
	})
}
