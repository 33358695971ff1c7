package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The parsers below turn JSON and YAML into one tree of positioned nodes, so
// that one decoder (decode.go) reports every problem with file:line:col for
// both formats. encoding/json and yaml.v3 alone would stop at the first
// problem and forget positions.

type nodeKind int

const (
	kindNull nodeKind = iota
	kindScalar
	kindMap
	kindSeq
)

type scalarType int

const (
	scalarString scalarType = iota
	scalarNumber            // JSON number or YAML !!int / !!float
	scalarBool
	scalarOther // YAML scalar of another tag (timestamp, binary, ...)
)

type tnode struct {
	kind      nodeKind
	typ       scalarType
	text      string // the scalar's value
	line, col int    // 1-based
	// fromYAML: YAML scalars are accepted where a string is expected (a
	// YAML user writes `zone-name: 1`); JSON keeps heketi-cli's types.
	fromYAML bool
	keys     []*tnode // kindMap: keys (scalars) and values, in file order
	vals     []*tnode
	items    []*tnode // kindSeq
}

func (n *tnode) describe() string {
	switch n.kind {
	case kindNull:
		return "null"
	case kindMap:
		return "an object"
	case kindSeq:
		return "a list"
	}
	switch n.typ {
	case scalarNumber:
		return "number " + n.text
	case scalarBool:
		return "boolean " + n.text
	}
	t := n.text
	if utf8.RuneCountInString(t) > 40 {
		r := []rune(t)
		t = string(r[:37]) + "..."
	}
	return strconv.Quote(t)
}

// format is the syntax of a topology file.
type format int

const (
	formatJSON format = iota
	formatYAML
)

func (f format) String() string {
	if f == formatYAML {
		return "YAML"
	}
	return "JSON"
}

// detectFormat chooses JSON or YAML by the file name's extension, else by
// content: a file that starts with { or [ and is valid JSON is JSON.
func detectFormat(name string, data []byte) format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return formatJSON
	case ".yaml", ".yml":
		return formatYAML
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		if json.Valid(data) {
			return formatJSON
		}
		// A YAML flow document also starts with {; if it is not valid
		// YAML either, the JSON parser reports the better position.
		var n yaml.Node
		if yaml.Unmarshal(data, &n) == nil {
			return formatYAML
		}
		return formatJSON
	}
	return formatYAML
}

// syntaxError is a parse failure at a position.
type syntaxError struct {
	line, col int
	msg       string
}

func (e *syntaxError) Error() string { return e.msg }

// lineIndex converts byte offsets to 1-based line and column (in runes).
type lineIndex struct {
	data   []byte
	starts []int
}

func newLineIndex(data []byte) *lineIndex {
	li := &lineIndex{data: data, starts: []int{0}}
	for i, c := range data {
		if c == '\n' {
			li.starts = append(li.starts, i+1)
		}
	}
	return li
}

func (li *lineIndex) pos(off int) (line, col int) {
	if off > len(li.data) {
		off = len(li.data)
	}
	if off < 0 {
		off = 0
	}
	// Binary search the last line start <= off.
	lo, hi := 0, len(li.starts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if li.starts[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo + 1, utf8.RuneCount(li.data[li.starts[lo]:off]) + 1
}

// parseJSON builds the tree with encoding/json's tokenizer, which keeps
// heketi-cli's exact syntax rules (heketi-cli decodes with encoding/json).
type jsonParser struct {
	data []byte
	dec  *json.Decoder
	li   *lineIndex
}

func parseJSON(data []byte) (*tnode, error) {
	p := &jsonParser{data: data, dec: json.NewDecoder(bytes.NewReader(data)), li: newLineIndex(data)}
	p.dec.UseNumber()
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &syntaxError{line: 1, col: 1, msg: "the file is empty; expected a JSON object {\"clusters\": [...]}"}
	}
	root, err := p.value()
	if err != nil {
		return nil, err
	}
	if off := p.skip(); off < len(data) {
		line, col := p.li.pos(off)
		return nil, &syntaxError{line: line, col: col, msg: "unexpected content after the end of the top-level JSON value"}
	}
	return root, nil
}

// skip returns the offset of the next token: after whitespace and the
// separators the tokenizer consumes silently.
func (p *jsonParser) skip() int {
	off := int(p.dec.InputOffset())
	for off < len(p.data) {
		switch p.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

func (p *jsonParser) syntax(err error) error {
	// The tokenizer's offsets are loose (before the whitespace preceding
	// the culprit); the whole-document scanner of json.Unmarshal reports
	// the exact byte, so ask it.
	var v any
	if uerr := json.Unmarshal(p.data, &v); uerr != nil {
		var se *json.SyntaxError
		if errors.As(uerr, &se) {
			if int(se.Offset) >= len(p.data) && strings.Contains(se.Error(), "unexpected end") {
				line, col := p.li.pos(len(p.data))
				return &syntaxError{line: line, col: col, msg: "JSON syntax error: unexpected end of file: an object, list or string is not closed"}
			}
			line, col := p.li.pos(int(se.Offset) - 1)
			return &syntaxError{line: line, col: col, msg: "JSON syntax error: " + se.Error()}
		}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := int(se.Offset) - 1
		line, col := p.li.pos(off)
		return &syntaxError{line: line, col: col, msg: "JSON syntax error: " + se.Error()}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		line, col := p.li.pos(len(p.data))
		return &syntaxError{line: line, col: col, msg: "JSON syntax error: unexpected end of file: an object, list or string is not closed"}
	}
	line, col := p.li.pos(int(p.dec.InputOffset()))
	return &syntaxError{line: line, col: col, msg: "JSON syntax error: " + err.Error()}
}

func (p *jsonParser) value() (*tnode, error) {
	start := p.skip()
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.syntax(err)
	}
	line, col := p.li.pos(start)
	n := &tnode{line: line, col: col}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n.kind = kindMap
			for p.dec.More() {
				kstart := p.skip()
				ktok, err := p.dec.Token()
				if err != nil {
					return nil, p.syntax(err)
				}
				key, ok := ktok.(string)
				if !ok {
					// The tokenizer guarantees a string key; be safe.
					kl, kc := p.li.pos(kstart)
					return nil, &syntaxError{line: kl, col: kc, msg: "JSON syntax error: expected a field name string"}
				}
				kl, kc := p.li.pos(kstart)
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, &tnode{kind: kindScalar, text: key, line: kl, col: kc})
				n.vals = append(n.vals, v)
			}
		case '[':
			n.kind = kindSeq
			for p.dec.More() {
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, v)
			}
		default:
			return nil, &syntaxError{line: line, col: col, msg: fmt.Sprintf("JSON syntax error: unexpected %q", rune(t))}
		}
		// The closing delimiter.
		if _, err := p.dec.Token(); err != nil {
			return nil, p.syntax(err)
		}
	case string:
		n.kind, n.typ, n.text = kindScalar, scalarString, t
	case json.Number:
		n.kind, n.typ, n.text = kindScalar, scalarNumber, t.String()
	case bool:
		n.kind, n.typ, n.text = kindScalar, scalarBool, strconv.FormatBool(t)
	case nil:
		n.kind = kindNull
	}
	return n, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// maxYAMLNodes bounds the tree; maxAliasNodes bounds what aliases expand
// to ("billion laughs"): a topology file has little use for aliases.
const (
	maxYAMLNodes  = 1 << 20
	maxAliasNodes = 10000
)

// parseYAML builds the tree with yaml.v3.
func parseYAML(data []byte) (*tnode, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &syntaxError{line: 1, col: 1, msg: "the file is empty; expected a YAML mapping with clusters:"}
		}
		return nil, yamlSyntax(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &syntaxError{line: extra.Line, col: extra.Column, msg: "the file holds more than one YAML document; expected one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlSyntax(err)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 0 {
		return nil, &syntaxError{line: 1, col: 1, msg: "the file is empty; expected a YAML mapping with clusters:"}
	}
	c := &yamlConverter{}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		root = doc.Content[0]
	}
	n := c.convert(root, 0)
	if c.err != nil {
		return nil, c.err
	}
	return n, nil
}

func yamlSyntax(err error) error {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &syntaxError{line: line, msg: "YAML syntax error: " + m[2]}
	}
	return &syntaxError{msg: "YAML syntax error: " + strings.TrimPrefix(msg, "yaml: ")}
}

type yamlConverter struct {
	count   int
	aliased int // nodes converted under an alias
	inAlias int
	err     error
}

func (c *yamlConverter) fail(y *yaml.Node, msg string) *tnode {
	if c.err == nil {
		c.err = &syntaxError{line: y.Line, col: y.Column, msg: msg}
	}
	return &tnode{kind: kindNull, line: y.Line, col: y.Column}
}

func (c *yamlConverter) convert(y *yaml.Node, depth int) *tnode {
	c.count++
	if c.inAlias > 0 {
		c.aliased++
	}
	if c.err != nil {
		return &tnode{kind: kindNull}
	}
	if c.count > maxYAMLNodes || depth > 10000 {
		return c.fail(y, "YAML document too large or too deeply nested")
	}
	if c.aliased > maxAliasNodes {
		return c.fail(y, "YAML aliases expand to too many nodes; write the topology out without aliases")
	}
	n := &tnode{line: y.Line, col: y.Column, fromYAML: true}
	switch y.Kind {
	case yaml.AliasNode:
		if y.Alias == nil {
			return c.fail(y, "YAML alias without an anchor")
		}
		c.inAlias++
		a := c.convert(y.Alias, depth+1)
		c.inAlias--
		// Report problems inside an alias at the alias, where the user
		// looks at it.
		cp := *a
		cp.line, cp.col = y.Line, y.Column
		return &cp
	case yaml.MappingNode:
		n.kind = kindMap
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Tag == "!!merge" {
				return c.fail(k, "YAML merge keys (<<) are not supported in a topology file; write the fields out")
			}
			if k.Kind != yaml.ScalarNode {
				return c.fail(k, "a YAML mapping key must be a plain string")
			}
			n.keys = append(n.keys, &tnode{kind: kindScalar, text: k.Value, line: k.Line, col: k.Column, fromYAML: true})
			n.vals = append(n.vals, c.convert(v, depth+1))
		}
	case yaml.SequenceNode:
		n.kind = kindSeq
		for _, it := range y.Content {
			n.items = append(n.items, c.convert(it, depth+1))
		}
	case yaml.ScalarNode:
		n.kind, n.text = kindScalar, y.Value
		switch y.ShortTag() {
		case "!!null":
			n.kind = kindNull
		case "!!str":
			n.typ = scalarString
		case "!!int", "!!float":
			n.typ = scalarNumber
		case "!!bool":
			n.typ = scalarBool
		default:
			n.typ = scalarOther
		}
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			n.kind = kindNull
			return n
		}
		return c.convert(y.Content[0], depth+1)
	default:
		return c.fail(y, "unexpected YAML node")
	}
	return n
}

// parseTree parses data in the given format.
func parseTree(f format, data []byte) (*tnode, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	if !utf8.Valid(data) {
		li := newLineIndex(data)
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		line, col := li.pos(off)
		return nil, &syntaxError{line: line, col: col, msg: "the file is not valid UTF-8 text"}
	}
	if f == formatYAML {
		return parseYAML(data)
	}
	return parseJSON(data)
}
