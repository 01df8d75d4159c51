"""hubcls.engine"""
