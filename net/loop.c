/* placeholder */ typedef int rk_net_placeholder;
