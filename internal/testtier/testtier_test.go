package testtier

import "testing"

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
