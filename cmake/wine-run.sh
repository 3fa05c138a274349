#!/bin/sh
# CTest's emulator for the windows preset: runs a .exe under Wine, quietly,
# in a private prefix so that tests never touch the user's ~/.wine.
export WINEDEBUG=-all
export WINEPREFIX="${DUET_WINEPREFIX:-${TMPDIR:-/tmp}/duet-wineprefix}"
export WINEDLLOVERRIDES="mscoree,mshtml="  # no Mono/Gecko install prompts
exec wine "$@"
