# SPDX-License-Identifier: BSD-3-Clause
# bash completion for nvlend (and nvlendd, nvlend-perf options).
#
# Commands and options are read from the programs' own --help texts, so
# they never drift from what the programs accept; object names (bdevs,
# subsystem NQNs, bricks, virtio-blk controllers, NBD exports, attachments,
# RPC methods) are asked of the running daemon (-s/--socket or
# $NVLEND_SOCKET are honoured). Nothing here needs the bash-completion
# package's helpers. Installed as share/bash-completion/completions/nvlend
# (with links for nvlendd and nvlend-perf).

_nvlend_cmds_cache=
_nvlend_cmds() {
	# every command path of 'nvlend --help', one per line ("bdev create ram")
	if [ -z "$_nvlend_cmds_cache" ]; then
		_nvlend_cmds_cache=$("$1" --help 2>/dev/null | sed -n '/^COMMANDS/,/^[A-Z]/p' |
			sed -nE 's/^    ([a-z][a-z -]*[a-z])  +.*/\1/p')
	fi
	printf '%s\n' "$_nvlend_cmds_cache"
}

# the long and short options listed in a help text's OPTIONS sections
_nvlend_help_opts() {
	"$@" --help 2>/dev/null | sed -n '/^[A-Z ]*OPTIONS$/,/^[A-Z]/p' |
		grep -oE -- '(^|[ ,])--?[a-zA-Z0-9][a-zA-Z0-9_-]*(=)?' | sed -E 's/^[ ,]//' | sort -u
}

# names from a JSON listing: _nvlend_json_field FIELD nvlend ARGS...
_nvlend_json_field() {
	local field=$1
	shift
	"$@" 2>/dev/null | grep -oE "\"$field\": \"[^\"]*\"" | sed -E "s/.*: \"(.*)\"/\1/"
}

_nvlend() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local prog=${COMP_WORDS[0]} i w cpath= npos=0 cmds c match
	local -a base=("$prog")
	COMPREPLY=()
	# global options and the command path typed so far
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case "$w" in
		-s | --socket | -t | --timeout)
			base+=("$w" "${COMP_WORDS[i + 1]}")
			i=$((i + 1))
			continue
			;;
		-*) continue ;;
		esac
		if [ -n "$(_nvlend_cmds "$prog" | grep -E "^${cpath:+$cpath }$w( |$)" | head -1)" ] &&
			[ $npos = 0 ]; then
			cpath=${cpath:+$cpath }$w
		else
			npos=$((npos + 1))
		fi
	done
	case "$prev" in
	-s | --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	-t | --timeout) return ;;
	--via) COMPREPLY=($(compgen -W "auto kernel ublk nbd fuse" -- "$cur")); return ;;
	-o | --output | --fast | --slow | --slow-file | --config | -c | --log-file | --pid-file)
		COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	if [[ "$cur" == -* ]]; then
		if [ -n "$cpath" ]; then
			# shellcheck disable=SC2086
			COMPREPLY=($(compgen -W "$(_nvlend_help_opts "$prog" $cpath)" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_nvlend_help_opts "$prog")" -- "$cur"))
		fi
		return
	fi
	# the next word of a command path
	match=$(_nvlend_cmds "$prog" | grep -E "^${cpath:+$cpath }" | grep -vxF "$cpath")
	if [ -n "$match" ] && [ $npos = 0 ]; then
		c=$(printf '%s\n' "$match" | sed -E "s/^${cpath:+$cpath }//" | cut -d' ' -f1 | sort -u)
		COMPREPLY=($(compgen -W "$c" -- "$cur"))
		return
	fi
	# operands: objects of the running daemon
	case "$cpath" in
	"bdev delete" | "bdev iostat" | "bdev list" | "nbd export add" | "vblk create")
		[ "$cpath" = "vblk create" ] && [ $npos != 1 ] && return
		[ "$cpath" = "nbd export add" ] && [ $npos != 0 ] && return
		c=$(_nvlend_json_field name "${base[@]}" --json bdev list) ;;
	"subsystem add-ns")
		if [ $npos = 0 ]; then c=$(_nvlend_json_field nqn "${base[@]}" --json subsystem list)
		else c=$(_nvlend_json_field name "${base[@]}" --json bdev list); fi ;;
	subsystem\ *)
		[ $npos = 0 ] || return
		c=$(_nvlend_json_field nqn "${base[@]}" --json subsystem list) ;;
	"brick create") return ;;
	brick\ *)
		[ $npos = 0 ] || return
		c=$(_nvlend_json_field name "${base[@]}" --json brick show) ;;
	"vblk destroy" | "vblk list")
		c=$(_nvlend_json_field name "${base[@]}" --json vblk list) ;;
	"nbd export remove" | "nbd export list")
		c=$(_nvlend_json_field name "${base[@]}" --json nbd export list) ;;
	detach)
		c=$(_nvlend_json_field name "$prog" --json attachments) ;;
	rpc)
		[ $npos = 0 ] || return
		c=$("${base[@]}" methods 2>/dev/null | cut -d' ' -f1) ;;
	"bdev create file")
		[ $npos = 1 ] && COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	*) return ;;
	esac
	COMPREPLY=($(compgen -W "$c" -- "$cur"))
}

# nvlendd and nvlend-perf: their options
_nvlend_opts_only() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	case "$prev" in
	-c | --config | --log-file | --pid-file | -s | --rpc-socket | -S | --vhost-socket-dir)
		COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	[[ "$cur" == -* ]] && COMPREPLY=($(compgen -W "$(_nvlend_help_opts "${COMP_WORDS[0]}")" -- "$cur"))
	# fio-style --opt=VALUE: no space after the '='
	[[ "${COMPREPLY[*]}" == *= ]] && compopt -o nospace 2>/dev/null
	return 0
}

complete -F _nvlend nvlend
complete -F _nvlend_opts_only nvlendd nvlend-perf
