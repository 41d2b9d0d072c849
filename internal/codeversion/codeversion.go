// Package codeversion computes an asset function's code version from its
// source file. The generator writes the versions into flowstone_gen.go and
// embeds the annotated files beside them; the runtime computes them again
// from the embedded files when it opens, so a binary whose asset code was
// edited after the last go generate is refused instead of reusing results
// of the old code. Both sides call Funcs, so they cannot disagree.
//
// The version is taken from tokens, not from a syntax tree: scanning is
// several times cheaper than parsing and printing, which keeps the check
// at Open small, and tokens ignore exactly what should not count (layout
// and comments).
package codeversion

import (
	"crypto/sha256"
	"encoding/hex"
	"go/scanner"
	"go/token"
	"slices"
	"strings"
)

// directive is the line that makes a function an asset; its options are
// part of the version.
const directive = "//flowstone:asset"

// Funcs returns the code version of every top-level function declared in
// src (methods and function literals aside), by name: 16 hex digits of a
// sha256 over the function's tokens, without comments or layout, and its
// //flowstone:asset options sorted. A file that does not scan yields what
// was read before the first error.
func Funcs(src []byte) map[string]string {
	out := map[string]string{}
	fset := token.NewFileSet()
	file := fset.AddFile("", -1, len(src))
	var s scanner.Scanner
	s.Init(file, src, func(token.Position, string) {}, scanner.ScanComments)

	var doc []string // comment lines since the last token
	depth := 0
	for {
		_, tok, lit := s.Scan()
		switch tok {
		case token.EOF:
			return out
		case token.COMMENT:
			doc = append(doc, lit)
			continue
		case token.LPAREN, token.LBRACK, token.LBRACE:
			depth++
		case token.RPAREN, token.RBRACK, token.RBRACE:
			depth--
		case token.FUNC:
			if depth == 0 {
				if name, version, ok := function(&s, doc); ok {
					out[name] = version
				}
			}
		}
		doc = doc[:0]
	}
}

// function reads a top-level declaration after its func keyword, up to
// the semicolon that ends it, and hashes it; ok is false for a method (or
// a function literal in a var declaration), which is read all the same.
func function(s *scanner.Scanner, doc []string) (name, version string, ok bool) {
	h := sha256.New()
	write := func(tok token.Token, lit string) {
		h.Write([]byte(tok.String()))
		if tok != token.SEMICOLON && lit != "" {
			h.Write([]byte{' '})
			h.Write([]byte(lit))
		}
		h.Write([]byte{'\n'})
	}
	write(token.FUNC, "")
	depth := 0
	for i := 0; ; i++ {
		_, tok, lit := s.Scan()
		if i == 0 && tok == token.IDENT {
			name, ok = lit, true
		}
		switch tok {
		case token.EOF:
			return "", "", false
		case token.COMMENT:
			continue
		case token.LPAREN, token.LBRACK, token.LBRACE:
			depth++
		case token.RPAREN, token.RBRACK, token.RBRACE:
			depth--
		case token.SEMICOLON:
			if depth == 0 {
				if !ok {
					return "", "", false
				}
				h.Write([]byte(directive + " " + options(doc)))
				return name, hex.EncodeToString(h.Sum(nil))[:16], true
			}
		}
		write(tok, lit)
	}
}

// options returns the options of the directive among the doc comment's
// lines, sorted, so that their order does not count.
func options(doc []string) string {
	for _, line := range doc {
		rest, ok := strings.CutPrefix(line, directive)
		if !ok || rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			continue
		}
		opts := fields(rest)
		slices.Sort(opts)
		return strings.Join(opts, " ")
	}
	return ""
}

// fields splits a directive's options at blanks outside double-quoted
// values.
func fields(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, escaped := false, false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case quoted && r == '\\':
			escaped = true
		case r == '"':
			quoted = !quoted
		case !quoted && (r == ' ' || r == '\t'):
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteRune(r)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
