package testenv

import (
	"bytes"
	"sync"
)

// Buffer captures output written from several goroutines or processes at
// once (klog, API warnings, a command's own output): a bytes.Buffer behind
// a mutex.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
