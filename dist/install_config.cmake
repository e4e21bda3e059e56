# Runs at install time (install(SCRIPT) in CMakeLists.txt), when
# CMAKE_INSTALL_PREFIX is the prefix of this install: places zoo.cfg, the
# systemd unit and the sysusers.d file, with the unit naming the installed
# binary and config. DESTDIR is applied by file(INSTALL) as for any file.

# GNUInstallDirs' rule: the /usr prefix keeps its configuration in /etc.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" OR CMAKE_INSTALL_PREFIX STREQUAL "/usr/")
  set(rk_etc /etc/ringkeeper)
else()
  set(rk_etc ${CMAKE_INSTALL_PREFIX}/etc/ringkeeper)
endif()

function(rk_under_prefix out dir)
  if(IS_ABSOLUTE ${dir})
    set(${out} ${dir} PARENT_SCOPE)
  else()
    set(${out} ${CMAKE_INSTALL_PREFIX}/${dir} PARENT_SCOPE)
  endif()
endfunction()
rk_under_prefix(rk_bindir ${RK_BINDIR})
rk_under_prefix(rk_unitdir ${RK_SYSTEMD_UNIT_DIR})
rk_under_prefix(rk_sysusersdir ${RK_SYSUSERS_DIR})

set(RK_UNIT_BIN ${rk_bindir}/ringkeeper)
set(RK_UNIT_CONF ${rk_etc}/zoo.cfg)
configure_file(${RK_DIST_DIR}/ringkeeper.service.in ${RK_DIST_BINARY_DIR}/ringkeeper.service
               @ONLY)
file(INSTALL DESTINATION ${rk_unitdir} TYPE FILE FILES ${RK_DIST_BINARY_DIR}/ringkeeper.service)
file(INSTALL DESTINATION ${rk_sysusersdir} TYPE FILE RENAME ringkeeper.conf
     FILES ${RK_DIST_DIR}/ringkeeper.sysusers)

# An edited zoo.cfg is the operator's: leave it and put the new default
# beside it, as dpkg does with a changed conffile.
set(rk_cfg "$ENV{DESTDIR}${rk_etc}/zoo.cfg")
if(EXISTS ${rk_cfg})
  file(READ ${rk_cfg} rk_old)
  file(READ ${RK_DIST_DIR}/zoo.cfg rk_new)
  if(NOT rk_old STREQUAL rk_new)
    message(STATUS "Keeping: ${rk_cfg} (edited); the default goes to zoo.cfg.dist")
    file(INSTALL DESTINATION ${rk_etc} TYPE FILE RENAME zoo.cfg.dist
         FILES ${RK_DIST_DIR}/zoo.cfg)
    return()
  endif()
endif()
file(INSTALL DESTINATION ${rk_etc} TYPE FILE FILES ${RK_DIST_DIR}/zoo.cfg)
