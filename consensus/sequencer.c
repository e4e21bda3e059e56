/* placeholder */ typedef int rk_consensus_placeholder;
