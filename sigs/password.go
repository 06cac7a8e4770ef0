package sigs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Errors returned by ReadPassword.
var (
	ErrNoPassword    = errors.New("no password given")
	ErrEmptyPassword = errors.New("password is empty")
)

// maxPasswordFileSize bounds how much of a password file is read.
const maxPasswordFileSize = 64 << 10

// ReadPassword returns the password that unlocks a key file. It comes from
// one of two places, never from a command-line flag value (flags show up in
// process listings and shell history):
//
//   - file, if not empty: the first line of that file, with the trailing
//     "\n" or "\r\n" removed and nothing else trimmed (spaces are part of the
//     password);
//   - otherwise the environment variable named envVar, if envVar is not
//     empty and the variable is set.
//
// If neither applies the error wraps ErrNoPassword. An empty password is
// refused with ErrEmptyPassword: Verity never encrypts a key under an empty
// password, and an empty line or variable is far more often a mistake than
// a choice.
func ReadPassword(file, envVar string) (string, error) {
	if file != "" {
		return readPasswordFile(file)
	}
	if envVar != "" {
		if pw, ok := os.LookupEnv(envVar); ok {
			if pw == "" {
				return "", fmt.Errorf("environment variable %s: %w", envVar, ErrEmptyPassword)
			}
			return pw, nil
		}
		return "", fmt.Errorf("%w: no password file and %s is not set", ErrNoPassword, envVar)
	}
	return "", fmt.Errorf("%w: no password file and no environment variable", ErrNoPassword)
}

func readPasswordFile(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(io.LimitReader(f, maxPasswordFileSize))
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("password file %s: %w", file, err)
	}
	if len(line) >= maxPasswordFileSize {
		return "", fmt.Errorf("password file %s: first line is longer than %d bytes", file, maxPasswordFileSize-1)
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("password file %s: %w", file, ErrEmptyPassword)
	}
	return line, nil
}
