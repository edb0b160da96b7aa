package proc

import "testing"

func TestParseStat(t *testing.T) {
	line := "4242 (a (weird) name) S 1 4242 4243 34816 4242 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200\n"
	s, err := parseStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stat{Pid: 4242, PPid: 1, Pgrp: 4242, Session: 4243, State: 'S', StartTicks: 987654}); s != want {
		t.Errorf("parseStat = %+v, want %+v", s, want)
	}
	if _, err := parseStat(1, []byte("1 (init S 0")); err == nil {
		t.Error("parseStat of a malformed line succeeded")
	}
}
