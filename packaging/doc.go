// Package packaging holds no code: its tests check what `make install` puts on a host, the
// systemd units in systemd/ (systemd-analyze verify and security) and the install itself.
package packaging
