package testtier

import (
	"testing"
	"time"
)

func TestTiers(t *testing.T) {
	t.Setenv(Env, "")
	if IsLong() {
		t.Fatal("long tier enabled without the variable")
	}
	skipped := false
	t.Run("default tier", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Long(t, "a test")
	})
	if !skipped {
		t.Fatal("Long did not skip in the default tier")
	}
	t.Setenv(Env, "long")
	if !IsLong() {
		t.Fatalf("%s=long does not enable the long tier", Env)
	}
	t.Run("long tier", func(t *testing.T) {
		Long(t, "a test")
		if t.Skipped() {
			t.Fatal("Long skipped in the long tier")
		}
	})
}

func TestLimit(t *testing.T) {
	d, ok := t.Deadline()
	if !ok {
		if got := Limit(t, time.Hour); got != time.Hour {
			t.Fatalf("Limit without a -timeout = %v, want the limit", got)
		}
		return
	}
	if got := Limit(t, time.Second); got != time.Second {
		t.Fatalf("Limit(1s) = %v, want 1s well before the -timeout", got)
	}
	left := time.Until(d)
	if got := Limit(t, 1000*time.Hour); got >= left || got <= 0 {
		t.Fatalf("Limit(1000h) = %v with %v left before the -timeout, want less than that", got, left)
	}
}
